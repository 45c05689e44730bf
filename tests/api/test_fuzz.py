"""Schemathesis against docs/openapi.json, in-process, on a seeded desk.

Requests go through :func:`desk.local.api_server.make_wsgi_app`: the same API Gateway v2 events and
token check as the local HTTP server (``make api``), without sockets. Every generated request
carries a valid token. Checks: no 5xx ever; every negative (schema-violating) request is a 4xx with
the error shape; and for reads (GET) and every negative request, the database is unchanged.
Positive requests to write routes (orders, kill switch, alert rules, backtests) may change the
database: for those only the no-5xx rule applies.

"Unchanged" is measured by a write counter: row triggers on every table of the test schema count
inserted, updated and deleted rows (a statement trigger counts TRUNCATE) in the same transaction as
the write, so a rolled-back attempt counts nothing. One indexed read per check instead of hashing
every table twice per request.

The normal run is a seeded sample (``derandomize``) of :data:`PER_OPERATION` cases per operation;
``make soak`` runs :data:`SOAK_PER_OPERATION`, about 2,000 requests in all.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from desk.api.app import app
from desk.api.auth import READ, TRADE, issue_token
from desk.api.openapi import DEFAULT_PATH
from desk.local.api_server import make_wsgi_app
from tests.api.conftest import Desk, build_desk, install

schema = schemathesis.openapi.from_path(str(DEFAULT_PATH))
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
PER_OPERATION = 10
SOAK_PER_OPERATION = 67  # 30 operations x 67 = 2,010 cases
SETTINGS = {"derandomize": True, "deadline": None, "suppress_health_check": list(HealthCheck), "database": None}

_COUNTER = """
CREATE TABLE "{s}"."_fuzz_writes" (n bigint NOT NULL);
INSERT INTO "{s}"."_fuzz_writes" VALUES (0);
CREATE FUNCTION "{s}"."_fuzz_count"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE "{s}"."_fuzz_writes" SET n = n + 1;
    RETURN NULL;
END $$;
"""
_TRIGGERS = """
CREATE TRIGGER _fuzz_rows AFTER INSERT OR UPDATE OR DELETE ON "{s}"."{t}"
    FOR EACH ROW EXECUTE FUNCTION "{s}"."_fuzz_count"();
CREATE TRIGGER _fuzz_truncate AFTER TRUNCATE ON "{s}"."{t}"
    FOR EACH STATEMENT EXECUTE FUNCTION "{s}"."_fuzz_count"();
"""


class Fuzz:
    def __init__(self, desk: Desk, conn: psycopg.Connection[tuple[int]], token: str) -> None:
        self.desk, self.conn = desk, conn
        self.app = make_wsgi_app(app, desk.clock)
        self.headers = {"Authorization": f"Bearer {token}"}
        self.requests = 0
        self.statuses: dict[int, int] = {}

    def writes(self) -> int:
        row = self.conn.execute('SELECT n FROM "_fuzz_writes"').fetchone()
        assert row is not None
        return row[0]


def _count_writes(conn: psycopg.Connection[tuple[int]], name: str) -> None:
    """Install the write counter on every base table the migrations created (after seeding)."""
    # Tables and partitioned tables, not partitions: they inherit the parent's row trigger.
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
            (name,),
        )
    ]
    conn.execute(_COUNTER.format(s=name).encode())
    for table in tables:
        conn.execute(_TRIGGERS.format(s=name, t=table).encode())


@pytest.fixture(scope="module")
def fuzz(database_url: str, redis_base_url: str) -> Iterator[Fuzz]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    sep = "&" if "?" in database_url else "?"
    url = f"{database_url}{sep}options=-csearch_path%3D{name}"
    redis_db = (
        redis_base_url.rsplit("/", 1)[0] + "/15"
        if not redis_base_url.startswith("unix://")
        else f"{redis_base_url}?db=15"
    )
    desk: Desk | None = None
    conn: psycopg.Connection[tuple[int]] | None = None
    fuzz: Fuzz | None = None
    try:
        desk = build_desk(url, name, redis_db)
        install(desk)
        conn = psycopg.connect(url, autocommit=True)
        _count_writes(conn, name)
        fuzz = Fuzz(desk, conn, issue_token("fuzzer", (READ, TRADE), now=desk.clock.now()))
        yield fuzz
    finally:
        if fuzz is not None:
            statuses = dict(sorted(fuzz.statuses.items()))
            print(f"\nfuzz: {fuzz.requests} requests, statuses {statuses}, {fuzz.writes()} rows written")
        if conn is not None:
            conn.close()
        app.dependency_overrides.clear()
        if desk is not None:
            desk.redis.flushdb()
            desk.store.close()
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{name}" CASCADE')


def _exercise(case: schemathesis.Case, fuzz: Fuzz) -> None:
    # The token goes into the case itself, so schemathesis re-judges the case as sent: a negative case
    # whose only violation was its Authorization header is a valid request once the real token replaces it.
    if case.headers is None:
        case.headers = {}
    case.headers.update(fuzz.headers)
    negative = case.meta is not None and case.meta.generation.mode.is_negative
    read_only = case.method.upper() == "GET" or negative
    before = fuzz.writes() if read_only else 0
    response = case.call(app=fuzz.app)
    fuzz.requests += 1
    fuzz.statuses[response.status_code] = fuzz.statuses.get(response.status_code, 0) + 1
    where = f"{case.method} {case.formatted_path}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
    if negative:
        assert 400 <= response.status_code < 500, f"{where} accepted invalid input: {case.meta}"
        assert set(json.loads(response.text)) == {"code", "message", "details"}, f"{where}: {response.text}"
    if read_only:
        assert fuzz.writes() == before, f"{where} changed the database"


@schema.parametrize()
@settings(max_examples=PER_OPERATION, **SETTINGS)
def test_generated_requests_never_fail_the_server(case: schemathesis.Case, fuzz: Fuzz) -> None:
    _exercise(case, fuzz)


@pytest.mark.soak
@schema.parametrize()
@settings(max_examples=SOAK_PER_OPERATION, **SETTINGS)
def test_generated_requests_never_fail_the_server_soak(case: schemathesis.Case, fuzz: Fuzz) -> None:
    _exercise(case, fuzz)
