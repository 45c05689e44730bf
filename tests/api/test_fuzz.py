"""Schemathesis against docs/openapi.json, in-process, on a seeded desk.

Requests go through :func:`desk.local.api_server.make_wsgi_app`: the same API Gateway v2 events and
token check as the local HTTP server (``make api``), without sockets. Every generated request
carries a valid token (scopes read and trade). Checks: no 5xx ever; every negative
(schema-violating) request is a 4xx with the error shape (one accepted is judged by schemathesis's
``negative_data_rejection``, which knows the cases serialization makes valid); and the database changes only where a
valid request to a write route may change it (see :data:`WRITES`): GETs, every negative request
and valid requests to computing POSTs (bulk regimes, sizing, schedules, routing, stress, allocation)
write nothing at all.

"Changes" are measured by a write counter: row triggers on every table of the test schema count
inserted, updated and deleted rows per table (a statement trigger counts TRUNCATE) in the same
transaction as the write, so a rolled-back attempt counts nothing (a partition's rows count under the
partition's name). Two small reads per request instead of hashing every table twice.

The fuzz must reach the desk, not only its validators: the OpenAPI document carries an example for
every parameter and request model (the desk's own symbols, strategy and ids), schemathesis builds
its valid requests from them, and the desk is seeded so those requests find data (bars, quotes and
books, regimes, correlation snapshots, positions, signals, a plan with an open order, a backtest
job, alert rules). Each operation must answer at least one 2xx (:data:`NO_SUCCESS` would list the
exceptions and why). When one process runs every operation (not split by xdist or ``-k``), at least
:data:`MIN_VALID_SUCCESS_SHARE` of the valid requests and :data:`MIN_SUCCESS_SHARE` of all requests
must be 2xx. About two thirds of the requests are invalid by construction (negative mode, the
coverage phase's boundary violations and unexpected methods), which caps the overall share near a
third; most valid requests that fail are the coverage phase's boundary values of identifiers
(venue ``0``, symbol ``00...0``), which name nothing the desk holds. The tally (statuses per
operation, valid/invalid counts) is printed at the end of the module.

The normal run is a seeded sample (``derandomize``): every schema example and the coverage phase's
boundary cases, plus :data:`PER_OPERATION` fuzzed cases per operation; ``make soak`` adds
:data:`SOAK_PER_OPERATION` fuzzed cases per operation, over 2,000 requests on top.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jsonschema_rs
import numpy as np
import pandas as pd
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection
from schemathesis.core.parameters import ParameterLocation

from desk.api.app import app
from desk.api.auth import READ, TRADE, issue_token
from desk.api.jobs import job_key
from desk.api.models import EXAMPLE_CLIENT_ORDER_ID, EXAMPLE_PLAN_ID, BacktestJob
from desk.api.openapi import DEFAULT_PATH
from desk.api.routers.strategy import EXAMPLE_JOB_ID
from desk.domain.orders import Fill, OrderState, OrderType, Side
from desk.local.api_server import make_wsgi_app
from desk.schemas.analytics import CorrelationSnapshot, Regime
from desk.schemas.market import BookLevel, OrderBook, Quote
from desk.schemas.trading import ExecutionPlan, OrderRecord, PlanSlice
from desk.store import AlertRuleRecord
from desk.usecases.regime import MODEL, STATES
from tests.api.conftest import SYMBOLS, VENUE, Desk, btc_regimes, build_desk, install, record_signals

DOCUMENT: dict[str, Any] = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
schema = schemathesis.openapi.from_path(str(DEFAULT_PATH))
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
OPERATIONS = sum(1 for _ in schema.get_all_operations())
PER_OPERATION = 10
SOAK_PER_OPERATION = 65  # 31 operations x 65 = 2,015 fuzzed cases, on top of the examples and coverage cases
SETTINGS: dict[str, Any] = {
    "derandomize": True,
    "deadline": None,
    "suppress_health_check": list(HealthCheck),
    "database": None,
}
# Measured: the seeded sample answers 2xx to ~58 % of valid and ~20 % of all requests, with the soak
# ~49 % and ~21 % (before the examples and the seed: ~14 % and ~4 %, and 21 of 30 operations no 2xx).
MIN_VALID_SUCCESS_SHARE = 0.40
MIN_SUCCESS_SHARE = 0.15

# What a valid request to a write route may change; every other request must change nothing.
WRITES: dict[str, frozenset[str]] = {
    "POST /v1/risk/alert": frozenset({"alert_rules"}),
    "POST /v1/risk/kill-switch": frozenset({"kill_switch", "kill_switch_history"}),
    "POST /v1/orders/submit": frozenset({"plans"}),
    "POST /v1/orders/cancel": frozenset({"orders"}),
}
# Operations allowed to end without a single 2xx, and why.
NO_SUCCESS: dict[str, str] = {}

_COUNTER = """
CREATE TABLE "{s}"."_fuzz_writes" (tbl text PRIMARY KEY, n bigint NOT NULL);
CREATE FUNCTION "{s}"."_fuzz_count"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO "{s}"."_fuzz_writes" VALUES (TG_TABLE_NAME, 1)
        ON CONFLICT (tbl) DO UPDATE SET n = "_fuzz_writes".n + 1;
    RETURN NULL;
END $$;
"""
_TRIGGERS = """
CREATE TRIGGER _fuzz_rows AFTER INSERT OR UPDATE OR DELETE ON "{s}"."{t}"
    FOR EACH ROW EXECUTE FUNCTION "{s}"."_fuzz_count"();
CREATE TRIGGER _fuzz_truncate AFTER TRUNCATE ON "{s}"."{t}"
    FOR EACH STATEMENT EXECUTE FUNCTION "{s}"."_fuzz_count"();
"""


@dataclass
class Tally:
    """Statuses per operation, and how many of its requests were valid (+) or invalid (-)."""

    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    positive: Counter[str] = field(default_factory=Counter)
    negative: Counter[str] = field(default_factory=Counter)
    valid_as_sent: int = 0  # generated invalid, accepted, and valid on the wire

    def add(self, operation: str, status: int, negative: bool) -> None:
        self.statuses.setdefault(operation, Counter())[status] += 1
        (self.negative if negative else self.positive)[operation] += 1

    def requests(self, operation: str | None = None) -> int:
        rows = self.statuses.values() if operation is None else [self.statuses.get(operation, Counter())]
        return sum(sum(c.values()) for c in rows)

    def successes(self, operation: str | None = None) -> int:
        rows = self.statuses.values() if operation is None else [self.statuses.get(operation, Counter())]
        return sum(n for c in rows for status, n in c.items() if 200 <= status < 300)

    def report(self) -> list[str]:
        total, ok, valid = self.requests(), self.successes(), sum(self.positive.values())
        overall: Counter[int] = sum(self.statuses.values(), Counter())
        lines = [
            f"fuzz: {total} requests ({valid} valid, {total - valid} invalid), {ok} 2xx = {ok / max(total, 1):.1%}"
            f" of all, {ok / max(valid, 1):.1%} of valid; statuses {dict(sorted(overall.items()))};"
            f" {self.valid_as_sent} generated invalid but valid as sent"
        ]
        for op in sorted(self.statuses):
            share = self.successes(op) / max(self.requests(op), 1)
            counts = dict(sorted(self.statuses[op].items()))
            lines.append(f"  {op:<42} {share:4.0%} 2xx  +{self.positive[op]}/-{self.negative[op]}  {counts}")
        return lines


class Fuzz:
    def __init__(self, desk: Desk, conn: psycopg.Connection[tuple[str, int]], token: str) -> None:
        self.desk, self.conn = desk, conn
        self.app = make_wsgi_app(app, desk.clock)
        self.headers = {"Authorization": f"Bearer {token}"}
        self.tally = Tally()  # the whole module, in this process
        self.current = Tally()  # the running test item (one operation)

    def writes(self) -> Counter[str]:
        return Counter(dict(self.conn.execute('SELECT tbl, n FROM "_fuzz_writes"').fetchall()))


def _count_writes(conn: psycopg.Connection[tuple[str, int]], name: str) -> None:
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
    assert "alert_rules" in tables and "signals" in tables
    conn.execute(_COUNTER.format(s=name).encode())
    for table in tables:
        conn.execute(_TRIGGERS.format(s=name, t=table).encode())


def seed_fuzz(desk: Desk) -> None:
    """What the examples in the OpenAPI document need to find, beyond the API tests' seed."""
    store, now = desk.store, desk.clock.now()
    start = now - timedelta(days=200)
    closes = pd.DataFrame(
        {
            s: pd.Series({b.ts: float(b.close) for b in store.load_bars(VENUE, s, "1d", start, now)})
            for s in SYMBOLS.values()
        }
    ).dropna()
    for symbol in SYMBOLS.values():  # quotes and books for every example symbol
        last = Decimal(str(closes[symbol].iloc[-1]))
        tick = last / 10_000
        desk.quotes.put_quote(
            Quote(
                venue=VENUE,
                symbol=symbol,
                ts=now,
                bid=last - tick,
                ask=last + tick,
                bid_size=Decimal(3),
                ask_size=Decimal(2),
            )
        )
        desk.quotes.put_book(
            OrderBook(
                venue=VENUE,
                symbol=symbol,
                ts=now,
                bids=tuple(BookLevel(price=last - tick * (k + 1), quantity=Decimal("0.5")) for k in range(5)),
                asks=tuple(BookLevel(price=last + tick * (k + 1), quantity=Decimal("0.5")) for k in range(5)),
            )
        )
    for regime in btc_regimes(desk, 30):
        store.save_regime(regime)
    for symbol in ("ETH/USDT", "LTC/USDT"):
        ts = closes.index[-1].to_pydatetime()
        store.save_regime(
            Regime(symbol=symbol, timeframe="1d", ts=ts, model=MODEL, label=STATES[0], state=0, probabilities=(1.0,))
        )
    returns = closes.pct_change().dropna()
    for window in (90, 120):  # the default window and the example's
        corr = np.corrcoef(returns.iloc[-window:].to_numpy().T)
        matrix = tuple(tuple(float(v) for v in row) for row in (corr + corr.T) / 2)
        matrix = tuple(tuple(1.0 if i == j else v for j, v in enumerate(row)) for i, row in enumerate(matrix))
        for method in ("pearson", "ledoit_wolf"):
            store.save_correlation(
                CorrelationSnapshot(
                    ts=returns.index[-1].to_pydatetime(),
                    timeframe="1d",
                    method=method,
                    window=window,
                    symbols=tuple(closes.columns),
                    matrix=matrix,
                )
            )
    for i, (symbol, side, qty) in enumerate((("BTC/USDT", Side.BUY, "1"), ("ETH/USDT", Side.SELL, "10"))):
        price = Decimal(str(closes[symbol].iloc[-1]))
        store.record_fill(
            Fill(venue=VENUE, venue_trade_id=f"seed-{i}", client_order_id=f"seed{i}-0", symbol=symbol, side=side,
                 quantity=Decimal(qty), price=price, occurred_at=now - timedelta(days=1))
        )  # fmt: skip
    record_signals(desk, 5)
    # The example order resting on the book: not the submit example's order, which it would make a duplicate.
    quantity = Decimal("0.02")
    limit = Decimal(str(round(closes["BTC/USDT"].iloc[-1] * 1.1, 2)))
    store.save_plan(
        ExecutionPlan(
            plan_id=EXAMPLE_PLAN_ID,
            strategy="api",
            venue=VENUE,
            symbol="BTC/USDT",
            side=Side.SELL,
            quantity=quantity,
            created_at=now,
            schedule="immediate",
            slices=(PlanSlice(slice_no=0, quantity=quantity, not_before=now, limit_price=limit),),
        )
    )
    store.upsert_order(
        OrderRecord(
            client_order_id=EXAMPLE_CLIENT_ORDER_ID,
            venue=VENUE,
            symbol="BTC/USDT",
            side=Side.SELL,
            order_type=OrderType.LIMIT,
            quantity=quantity,
            limit_price=limit,
            state=OrderState.ACCEPTED,
            updated_at=now,
        )
    )
    job = BacktestJob(job_id=EXAMPLE_JOB_ID, status="queued", submitted_at=now)
    desk.redis.set(job_key(EXAMPLE_JOB_ID), job.model_dump_json())
    for name, metric in (("var-limit", "var"), ("cvar-limit", "cvar")):  # as the request example, and another
        store.create_alert_rule(AlertRuleRecord("desk", name, metric, 0.05, "warning", False, now, "seed"))


@pytest.fixture(scope="module")
def fuzz(database_url: str, redis_base_url: str, pytestconfig: pytest.Config) -> Iterator[Fuzz]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{name}"')
    sep = "&" if "?" in database_url else "?"
    url = f"{database_url}{sep}options=-csearch_path%3D{name}"
    redis_db = (
        redis_base_url.rsplit("/", 1)[0] + "/15"
        if not redis_base_url.startswith("unix://")
        else f"{redis_base_url}?db=15"
    )
    desk: Desk | None = None
    conn: psycopg.Connection[tuple[str, int]] | None = None
    fuzz: Fuzz | None = None
    try:
        desk = build_desk(url, name, redis_db)
        seed_fuzz(desk)
        install(desk)
        conn = psycopg.connect(url, autocommit=True)
        _count_writes(conn, name)
        fuzz = Fuzz(desk, conn, issue_token("fuzzer", (READ, TRADE), now=desk.clock.now()))
        yield fuzz
        if len(fuzz.tally.statuses) == OPERATIONS:  # every operation ran here (not split by xdist or -k)
            tally, report = fuzz.tally, "\n".join(fuzz.tally.report())
            valid = tally.successes() / max(sum(tally.positive.values()), 1)
            assert valid >= MIN_VALID_SUCCESS_SHARE, f"too few valid requests reached the desk:\n{report}"
            assert tally.successes() / tally.requests() >= MIN_SUCCESS_SHARE, f"too few 2xx:\n{report}"
    finally:
        if fuzz is not None:
            # Shown without -s: the tally is the measure of how far the fuzz gets into the desk.
            capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
            with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
                print(
                    "\n" + "\n".join([*fuzz.tally.report(), f"  rows written: {dict(sorted(fuzz.writes().items()))}"])
                )
        if conn is not None:
            conn.close()
        app.dependency_overrides.clear()
        if desk is not None:
            desk.redis.flushdb()
            desk.store.close()
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture
def reach(fuzz: Fuzz) -> Iterator[None]:
    """Each operation starts with the kill switch released (a fuzzed latch must not starve the next one's
    orders of a 2xx) and must answer at least one 2xx over its cases."""
    if fuzz.desk.store.kill_switch().latched:
        fuzz.desk.store.release_kill_switch(fuzz.desk.clock.now(), "fuzz", reason="next operation")
    fuzz.current = Tally()
    yield
    for op in fuzz.current.statuses:
        if op not in NO_SUCCESS:
            report = "\n".join(fuzz.current.report())
            assert fuzz.current.successes(op) > 0, f"{op} never reached the desk (no 2xx):\n{report}"


def _resolved(node: Any) -> Any:
    """``node`` with the document's local ``$ref``s replaced by what they point to."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = DOCUMENT
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return _resolved({**target, **{k: v for k, v in node.items() if k != "$ref"}})
        return {key: _resolved(value) for key, value in node.items()}
    return [_resolved(item) for item in node] if isinstance(node, list) else node


def _readings(text: str) -> list[Any]:
    """What a parameter's wire text may stand for: itself, and a number when it reads as one."""
    readings: list[Any] = [text]
    if re.fullmatch(r"-?\d+", text):
        readings.append(int(text))
    with contextlib.suppress(ValueError):
        number = float(text)
        if math.isfinite(number):
            readings.append(number)
    return readings


def _valid_as_sent(case: schemathesis.Case[Any], response: schemathesis.Response) -> bool:
    """Whether a case generated as negative is valid as it travelled: only its query, path or headers were
    invalid, and their text on the wire is valid (``venue`` generated as the integer 0 is sent as "0")."""
    meta = case.meta
    if meta is None or case.method.upper() != case.operation.method.upper():
        return False
    if any(location == ParameterLocation.BODY and info.mode.is_negative for location, info in meta.components.items()):
        return False
    url = urlsplit(str(response.request.url))
    query = parse_qs(url.query, keep_blank_values=True)
    names = re.findall(r"{(\w+)}", case.operation.path)
    pattern = re.escape(case.operation.path)
    for name in names:
        pattern = pattern.replace(re.escape(f"{{{name}}}"), "([^/]+)")
    path = re.fullmatch(pattern, url.path)
    if path is None:
        return False
    wire = {("path", n): [unquote(v)] for n, v in zip(names, path.groups(), strict=True)}
    wire |= {("query", name): values for name, values in query.items()}
    headers = {k.lower(): v if isinstance(v, str) else v.decode("latin-1") for k, v in response.request.headers.items()}
    operation = DOCUMENT["paths"][case.operation.path][case.operation.method.lower()]
    for parameter in operation.get("parameters", []):
        where, name = parameter["in"], parameter["name"]
        values = (
            [headers[name.lower()]] if where == "header" and name.lower() in headers else wire.pop((where, name), [])
        )
        if not values:
            if parameter.get("required"):
                return False
            continue
        validator = jsonschema_rs.validator_for(_resolved(parameter["schema"]))
        if len(values) != 1 or not any(validator.is_valid(v) for v in _readings(values[0])):
            return False
    return not any(where == "query" for where, _ in wire)  # an undeclared query parameter is invalid


def _exercise(case: schemathesis.Case[Any], fuzz: Fuzz) -> None:
    # The token goes into the case itself, so schemathesis re-judges the case as sent: a negative case
    # whose only violation was its Authorization header is a valid request once the real token replaces it.
    if case.headers is None:
        case.headers = {}
    case.headers.update(fuzz.headers)
    negative = case.meta is not None and case.meta.generation.mode.is_negative
    operation = f"{case.operation.method.upper()} {case.operation.path}"
    before = fuzz.writes()
    response = case.call(app=fuzz.app)
    for tally in (fuzz.tally, fuzz.current):
        tally.add(operation, response.status_code, negative)
    where = f"{case.method} {case.formatted_path}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
    accepted_invalid = negative and not 400 <= response.status_code < 500
    if negative and not accepted_invalid:
        assert set(json.loads(response.text)) == {"code", "message", "details"}, f"{where}: {response.text}"
    if accepted_invalid:
        # Not plainly valid on the wire: schemathesis's own check knows the remaining cases serialization makes
        # valid (bodies) and raises for the rest, the real failures.
        if not _valid_as_sent(case, response):
            case.validate_response(response, checks=[negative_data_rejection])
        fuzz.tally.valid_as_sent += 1
    # Only a valid request to a write route may write (a negative case may use another method on the path).
    valid = not negative or accepted_invalid
    same_method = case.method.upper() == case.operation.method.upper()
    allowed = WRITES.get(operation, frozenset()) if valid and same_method else frozenset()
    changed = {table for table, n in (fuzz.writes() - before).items() if n}
    assert changed <= allowed, f"{where} ({response.status_code}) wrote {sorted(changed - allowed)}"


@schema.parametrize()
@settings(max_examples=PER_OPERATION, **SETTINGS)
def test_generated_requests_never_fail_the_server(case: schemathesis.Case[Any], fuzz: Fuzz, reach: None) -> None:
    _exercise(case, fuzz)


@pytest.mark.soak
@schema.parametrize()
@settings(max_examples=SOAK_PER_OPERATION, **SETTINGS)
def test_generated_requests_never_fail_the_server_soak(case: schemathesis.Case[Any], fuzz: Fuzz, reach: None) -> None:
    _exercise(case, fuzz)
