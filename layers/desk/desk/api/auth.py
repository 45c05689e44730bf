"""Who is calling: JWT claims from API Gateway, and local HS256 tokens for ``make api`` and tests.

In AWS the HTTP API's JWT authorizer verifies the token before the function runs and passes the
claims in ``requestContext.authorizer.jwt``; the function only reads them (:func:`claims_from_event`).
Locally nothing stands in front of the resolver, so :mod:`desk.local.api_server` verifies a bearer
token signed with a local secret (:func:`verify_token`) and puts its claims where API Gateway would.

Scopes: ``desk:read`` for every read, ``desk:trade`` for what changes the desk (orders, the kill
switch, alert rules).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from desk.api.errors import Forbidden, Unauthorized
from desk.clock import SystemClock

__all__ = ["READ", "TRADE", "AuthSettings", "Claims", "claims_from_event", "issue_token", "verify_token"]

READ = "desk:read"
TRADE = "desk:trade"
_HEADER = {"alg": "HS256", "typ": "JWT"}


class AuthSettings(BaseSettings):
    """``DESK_API_TOKEN_SECRET`` etc. (local only: in AWS the authorizer holds the issuer's keys)."""

    model_config = SettingsConfigDict(env_prefix="DESK_API_", extra="ignore", frozen=True)

    token_secret: SecretStr = SecretStr("lambda-desk-local-development-secret")
    issuer: str = "lambda-desk-local"
    audience: str = "lambda-desk-api"


@cache
def auth_settings() -> AuthSettings:
    return AuthSettings()


class Claims(BaseModel):
    model_config = ConfigDict(frozen=True)

    subject: str
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"this action needs the {scope} scope")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scopes(raw: object) -> frozenset[str]:
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, Sequence):
        return frozenset(str(s) for s in raw)
    return frozenset()


def issue_token(
    subject: str,
    scopes: Sequence[str] = (READ,),
    *,
    now: datetime,
    ttl: timedelta = timedelta(hours=8),
    settings: AuthSettings | None = None,
) -> str:
    """An HS256 JWT for ``subject`` with ``scope`` (space-separated, as OAuth 2 writes it)."""
    s = settings or auth_settings()
    payload = {
        "sub": subject,
        "scope": " ".join(scopes),
        "iss": s.issuer,
        "aud": s.audience,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    signing_input = f"{_b64(json.dumps(_HEADER).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = hmac.new(s.token_secret.get_secret_value().encode(), signing_input.encode(), hashlib.sha256)
    return f"{signing_input}.{_b64(signature.digest())}"


def verify_token(token: str, *, now: datetime, settings: AuthSettings | None = None) -> dict[str, Any]:
    """The token's claims, or :class:`Unauthorized` (bad shape, signature, issuer, audience or expiry)."""
    s = settings or auth_settings()
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthorized("malformed bearer token")
    try:
        header = json.loads(_unb64(parts[0]))
        claims = json.loads(_unb64(parts[1]))
        signature = _unb64(parts[2])
    except (ValueError, binascii.Error) as exc:
        raise Unauthorized("malformed bearer token") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        raise Unauthorized("unsupported token")
    expected = hmac.new(s.token_secret.get_secret_value().encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256)
    if not hmac.compare_digest(expected.digest(), signature):
        raise Unauthorized("bad token signature")
    if claims.get("iss") != s.issuer or claims.get("aud") != s.audience:
        raise Unauthorized("token issued for another audience")
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= now.timestamp():
        raise Unauthorized("token expired")
    return claims


def claims_from_event(event: Mapping[str, Any]) -> Claims:
    """The caller's claims, as API Gateway's JWT authorizer (or the local server) left them."""
    context = event.get("requestContext") or {}
    authorizer = context.get("authorizer") if isinstance(context, Mapping) else None
    jwt = authorizer.get("jwt") if isinstance(authorizer, Mapping) else None
    claims = jwt.get("claims") if isinstance(jwt, Mapping) else None
    if not isinstance(claims, Mapping) or not claims.get("sub"):
        raise Unauthorized("a bearer token is required")
    scopes = _scopes(jwt.get("scopes")) if isinstance(jwt, Mapping) and jwt.get("scopes") else frozenset()
    return Claims(subject=str(claims["sub"]), scopes=scopes | _scopes(claims.get("scope")))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m desk.api.auth SUBJECT [SCOPE...]`` prints a local token (default: read and trade)."""
    args = list(sys.argv[1:] if argv is None else argv)
    subject = args[0] if args else "developer"
    token = issue_token(subject, args[1:] or (READ, TRADE), now=SystemClock().now())
    sys.stdout.write(token + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
