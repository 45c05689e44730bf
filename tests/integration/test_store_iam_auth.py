"""IAM auth to RDS Proxy: every new connection, in either provider, is opened with a freshly signed token.

The local server trusts 127.0.0.1, so it does not check the password; what is asserted is what
libpq was given (``conn.info.password``) and that a reconnect signs a new token rather than reusing
an expired one. The token itself is botocore's real RDS signer with fixed test credentials.
"""

from __future__ import annotations

import itertools
from urllib.parse import parse_qs, urlsplit

import boto3
import psycopg
import pytest

from desk import wiring
from desk.aws.rds_auth import IamAuthError, iam_auth_token_source
from desk.settings import get_settings
from desk.store.connection import LambdaConnection, PooledConnection, SessionSettings
from tests.integration.test_store_controls import _terminate

PROXY_URL = "postgresql://desk_admin@desk-dev-proxy.proxy-abc.eu-west-1.rds.amazonaws.com:5432/desk?sslmode=require"


def rds_client() -> object:
    credentials = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "not-a-secret"}  # fixed, for signing
    return boto3.client("rds", region_name="eu-west-1", **credentials)


def test_the_token_is_a_presigned_connect_request_for_the_proxy_host_port_and_user() -> None:
    # Given the URL the stack hands every function
    source = iam_auth_token_source(PROXY_URL, "eu-west-1", client=rds_client())
    # When a token is signed
    token = source()
    # Then it is SigV4 for rds-db, action connect, for that host:port and user, valid 15 minutes
    parts = urlsplit("https://" + token)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert parts.netloc == "desk-dev-proxy.proxy-abc.eu-west-1.rds.amazonaws.com:5432"
    assert (query["Action"], query["DBUser"], query["X-Amz-Expires"]) == ("connect", "desk_admin", "900")
    assert query["X-Amz-Credential"].startswith("AKIDEXAMPLE/") and "/eu-west-1/rds-db/" in query["X-Amz-Credential"]
    assert len(query["X-Amz-Signature"]) == 64


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://desk-dev-proxy:5432/desk?sslmode=require", "a host and a user"),
        ("postgresql://desk_admin:hunter2@desk-dev-proxy:5432/desk?sslmode=require", "must not carry a password"),
        ("postgresql://desk_admin@desk-dev-proxy:5432/desk", "needs TLS"),
        ("postgresql://desk_admin@desk-dev-proxy:5432/desk?sslmode=prefer", "needs TLS"),
    ],
)
def test_a_url_unfit_for_iam_auth_is_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(IamAuthError, match=reason):
        iam_auth_token_source(url, "eu-west-1", client=rds_client())


def test_the_lambda_connection_signs_a_new_token_for_each_connection(database_url: str) -> None:
    # Given a provider whose password source counts its tokens
    counter = itertools.count(1)
    provider = LambdaConnection(database_url, SessionSettings(), password=lambda: f"token-{next(counter)}")
    try:
        # When it connects, is used again, then loses its connection and is used once more
        first = provider.run(lambda conn: (conn.info.password, conn.info.backend_pid))
        again = provider.run(lambda conn: conn.info.password)
        _terminate(database_url, first[1])
        after = provider.run(lambda conn: (conn.execute("SELECT 1"), conn.info.password)[1])
        # Then one token per connection: reused while open, a fresh one for the reconnect
        assert (first[0], again, after) == ("token-1", "token-1", "token-2")
    finally:
        provider.close()


def test_the_pool_signs_a_new_token_for_each_connection(database_url: str) -> None:
    # Given the streamer's pool of one connection, with a counting password source
    counter = itertools.count(1)
    pool = PooledConnection(database_url, min_size=1, max_size=1, password=lambda: f"token-{next(counter)}")

    def used(conn: psycopg.Connection[object]) -> tuple[str | None, int]:
        conn.execute("SELECT 1")
        return conn.info.password, conn.info.backend_pid

    try:
        # When it serves calls, then the server kills its connection, then it serves again
        first = [pool.run(used) for _ in range(3)]
        _terminate(database_url, first[0][1])
        after = pool.run(used)
        # Then the pooled connection kept its token, and its replacement was opened with a new one
        assert {token for token, _ in first} == {"token-1"}
        assert after[0] == "token-2" and after[1] != first[0][1]
    finally:
        pool.close()


def test_wiring_uses_iam_auth_only_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESK_DATABASE_URL", PROXY_URL)
    monkeypatch.setenv("DESK_REGION", "eu-west-1")
    get_settings.cache_clear()
    try:
        assert wiring.database_password() is None
        monkeypatch.setenv("DESK_DATABASE_IAM_AUTH", "true")
        get_settings.cache_clear()
        assert callable(wiring.database_password())
        monkeypatch.setenv("DESK_DATABASE_URL", "postgresql://desk_admin@proxy:5432/desk")
        get_settings.cache_clear()
        with pytest.raises(IamAuthError, match="needs TLS"):
            wiring.database_password()
    finally:
        get_settings.cache_clear()
