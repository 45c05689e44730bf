"""IAM authentication to PostgreSQL through RDS Proxy: a fresh auth token for every new connection.

In AWS the desk connects to RDS Proxy as ``desk_admin`` with no stored password: the proxy accepts
an IAM auth token, a SigV4-presigned ``connect`` request for that host, port and user, signed with
the function's (or the Fargate task's) role credentials. A token is valid for 15 minutes and is
needed only to open a connection, so one is signed locally (no network call) each time a
connection is opened; an open connection outlives its token. IAM auth requires TLS, so a URL that
does not ask for it is refused rather than sent in the clear.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg.conninfo import conninfo_to_dict

__all__ = ["IamAuthError", "iam_auth_token_source"]

_TLS_MODES = {"require", "verify-ca", "verify-full"}


class IamAuthError(ValueError):
    """The database URL cannot be used with IAM authentication (no user, a stored password, no TLS)."""


def iam_auth_token_source(conninfo: str, region: str, client: Any | None = None) -> Callable[[], str]:
    """A callable returning a new RDS IAM auth token for the host, port and user in ``conninfo``.

    ``client`` is an ``rds`` boto3 client (built lazily from :mod:`desk.aws.clients` when omitted).
    Raises :class:`IamAuthError` when the URL names no host or user, carries a password, or does
    not require TLS.
    """
    params = conninfo_to_dict(conninfo)
    host, user = params.get("host"), params.get("user")
    if not host or not user:
        raise IamAuthError("IAM database auth needs a host and a user in the database URL")
    if params.get("password"):
        raise IamAuthError("IAM database auth: the database URL must not carry a password")
    if params.get("sslmode") not in _TLS_MODES:
        raise IamAuthError("IAM database auth needs TLS: add sslmode=require (or verify-full) to the database URL")
    port = int(params.get("port") or 5432)

    def token() -> str:
        rds = client
        if rds is None:
            from desk.aws.clients import client as aws_client

            rds = aws_client("rds", region)
        signed: str = rds.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user, Region=region)
        return signed

    return token
