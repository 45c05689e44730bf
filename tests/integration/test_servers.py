"""The harness itself: real servers answer, and the fallbacks start when nothing is configured."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import redis

from desk.local import servers


def test_schema_fixture_isolates_tables(pg_url: str, pg_schema: str) -> None:
    # Given a connection on the test's schema, When a table is created
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE probe (x int)")
        schema = conn.execute("SELECT table_schema FROM information_schema.tables WHERE table_name='probe'").fetchone()
    # Then it lands in that schema, not in public
    assert schema == (pg_schema,)


def test_redis_fixture_is_a_real_server(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.set("k", "v")
    assert client.get("k") == b"v"
    assert client.dbsize() == 1


def test_fallback_postgres_starts_when_nothing_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a DATABASE_URL nobody listens on
    monkeypatch.setenv("DATABASE_URL", "postgresql://127.0.0.1:1/none")
    # When the harness is asked for a server, Then it starts one and it answers SQL
    with servers.postgres_server(tmp_path) as url:
        assert url != "postgresql://127.0.0.1:1/none"
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 41 + 1").fetchone() == (42,)


def test_fallback_redis_starts_when_nothing_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    with servers.redis_server(tmp_path) as url:
        client = redis.Redis.from_url(url)
        assert client.ping()
        client.close()
