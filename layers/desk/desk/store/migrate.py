"""Schema migrations: the SQL files in ``migrations/``, applied by yoyo-migrations.

Why yoyo: plain ``.sql`` files (reviewable, runnable with psql), a migration table and a lock in the
target schema, every migration in its own transaction (PostgreSQL DDL is transactional, so a failed
migration leaves nothing half-applied), and psycopg 3 support. Migrations are forward-only: a bad
one is fixed by the next one, as the audit tables must never be dropped by a rollback.

Everything, yoyo's own bookkeeping included, lands in ``schema`` (``search_path``), so each test
migrates a fresh schema and environments can share a cluster. Run at deploy (and by hand) with::

    python -m desk.store.migrate "$DATABASE_URL" --schema desk
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from yoyo import get_backend, read_migrations  # type: ignore[import-untyped]  # no stubs; see _backend

__all__ = ["MIGRATIONS_DIR", "migrate", "pending_migrations", "yoyo_url"]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# yoyo interpolates the schema into "SET search_path TO ..." unquoted: accept plain identifiers only.
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def yoyo_url(database_url: str, schema: str | None = None) -> str:
    """``database_url`` (``postgresql://``/``postgres://``) as a yoyo psycopg 3 URL targeting ``schema``."""
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise ValueError(f"not a PostgreSQL URL: scheme {parts.scheme!r}")
    query = dict(parse_qsl(parts.query))
    if schema is not None:
        if not _SCHEMA.match(schema):
            raise ValueError(f"schema {schema!r} must be a lower-case identifier")
        query["schema"] = schema
    return urlunsplit(("postgresql+psycopg", parts.netloc, parts.path, urlencode(query), parts.fragment))


def _backend(database_url: str, schema: str | None) -> Any:  # yoyo ships no types
    if schema is not None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    return get_backend(yoyo_url(database_url, schema))


def pending_migrations(database_url: str, schema: str | None = None) -> list[str]:
    """Ids of the migrations not yet applied to ``schema`` (the whole list on a fresh schema)."""
    backend = _backend(database_url, schema)
    try:
        return [m.id for m in backend.to_apply(read_migrations(str(MIGRATIONS_DIR)))]
    finally:
        backend.connection.close()


def migrate(database_url: str, schema: str | None = None) -> list[str]:
    """Apply every pending migration to ``schema`` (created if missing); return the ids applied.

    Idempotent: a second run applies nothing and returns ``[]``. Concurrent runs serialise on
    yoyo's lock table, so two deploys cannot interleave.
    """
    backend = _backend(database_url, schema)
    try:
        with backend.lock():
            todo = backend.to_apply(read_migrations(str(MIGRATIONS_DIR)))
            backend.apply_migrations(todo)
        return [m.id for m in todo]
    finally:
        backend.connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database_url")
    parser.add_argument("--schema", default=None, help="target schema (default: the URL's search_path)")
    args = parser.parse_args(argv)
    applied = migrate(args.database_url, args.schema)
    print("applied:", ", ".join(applied) if applied else "nothing (up to date)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
