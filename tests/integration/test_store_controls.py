"""Kill switch, reconciliation runs, analytics snapshots, and the connection providers' reconnect."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from desk.schemas.analytics import CorrelationSnapshot, Regime, RiskSnapshot, Signal
from desk.store import KillSwitchNotLatched, PostgresStore, ReconciliationRun, migrate
from desk.store.connection import LambdaConnection, PooledConnection, SessionSettings

T0 = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture
def store(database_url: str, pg_schema: str, pg_url: str) -> Iterator[PostgresStore]:
    migrate(database_url, pg_schema)
    s = PostgresStore(LambdaConnection(pg_url))
    yield s
    s.close()


def test_kill_switch_latch_is_idempotent_and_release_needs_a_latch(store: PostgresStore, pg_url: str) -> None:
    # Given a fresh desk, the switch is unlatched and releasing it is refused
    assert store.kill_switch().latched is False
    with pytest.raises(KillSwitchNotLatched):
        store.release_kill_switch(T0, "ops@desk")
    # When risk latches it twice, then a human releases it
    first = store.latch_kill_switch("VaR limit breached", T0, "risk")
    second = store.latch_kill_switch("drift for 3 cycles", T0 + timedelta(minutes=1), "reconcile")
    assert store.kill_switch() == first == second
    released = store.release_kill_switch(T0 + timedelta(hours=1), "ops@desk", reason="limits reviewed")
    # Then the first cause is kept while latched, and the history holds exactly the two changes
    assert (first.latched, first.reason, first.changed_by, first.changed_at) == (True, "VaR limit breached", "risk", T0)
    assert (released.latched, released.changed_by) == (False, "ops@desk")
    history = store.kill_switch_history()
    assert [(h.action, h.reason, h.changed_by) for h in history] == [
        ("latch", "VaR limit breached", "risk"),
        ("release", "limits reviewed", "ops@desk"),
    ]
    # And the history cannot be rewritten
    with psycopg.connect(pg_url) as conn, pytest.raises(psycopg.errors.RestrictViolation):
        conn.execute("DELETE FROM kill_switch_history")


def test_reconciliation_runs_count_consecutive_drift(store: PostgresStore) -> None:
    # Given a clean run followed by three drifting ones
    statuses = ["clean", "drift", "drift", "drift"]
    runs = [
        ReconciliationRun(f"r{i}", "binance", T0 + timedelta(minutes=i), T0 + timedelta(minutes=i, seconds=5), s,
                          drift_count=int(s == "drift"), details={"orders": 3})
        for i, s in enumerate(statuses)
    ]  # fmt: skip
    # When they are recorded (one twice)
    recorded = [store.record_reconciliation_run(r) for r in [*runs, runs[0]]]
    # Then the repeat is a no-op, the newest come first, and the drift streak is three
    assert recorded == [True, True, True, True, False]
    assert store.recent_reconciliation_runs("binance", limit=2) == [runs[3], runs[2]]
    assert store.consecutive_drift_runs("binance") == 3


def test_analytics_snapshots_round_trip_and_signals_are_saved_once(store: PostgresStore) -> None:
    # Given a regime, a correlation matrix, a risk snapshot and a signal
    regime = Regime(symbol="BTC/USDT", timeframe="1h", ts=T0, model="hmm2", label="calm", state=0,
                    probabilities=(0.75, 0.25))  # fmt: skip
    corr = CorrelationSnapshot(ts=T0, timeframe="1d", method="pearson", window=60, symbols=("A", "B"),
                               matrix=((1.0, 0.123456789012345), (0.123456789012345, 1.0)))  # fmt: skip
    risk = RiskSnapshot(portfolio="main", ts=T0, confidence=0.99, horizon_days=1, var=0.02, cvar=0.03,
                        method="historical", equity=Decimal("100000.12345678"),
                        gross_exposure=Decimal("50000.5"), net_exposure=Decimal("-20000.25"))  # fmt: skip
    signal = Signal(signal_id="s1", strategy="trend", venue="binance", symbol="BTC/USDT", timeframe="1h", ts=T0,
                    target_weight=0.5, strength=0.8)  # fmt: skip
    # When saved (twice: redeliveries) and read back
    for _ in range(2):
        store.save_regime(regime)
        store.save_correlation(corr)
        store.save_risk_snapshot(risk)
    saved = (store.save_signal(signal), store.save_signal(signal))
    # Then each reads back equal and the second signal save reports a duplicate
    assert store.latest_regime("BTC/USDT", "1h") == regime
    assert store.latest_correlation("1d", "pearson", 60) == corr
    assert store.latest_risk_snapshot("main") == risk
    assert store.latest_risk_snapshot("other") is None
    assert saved == (True, False)
    assert store.load_signal("s1") == signal


def _terminate(database_url: str, pid: int) -> None:
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_lambda_connection_reconnects_after_the_server_drops_it(store: PostgresStore, database_url: str) -> None:
    # Given a warm container whose connection the server then terminates (restart, failover, idle kill)
    store.latch_kill_switch("test", T0, "risk")
    provider = store.db
    assert isinstance(provider, LambdaConnection)
    old_pid = provider.backend_pid
    assert old_pid is not None
    _terminate(database_url, old_pid)
    # When the next invocation uses the store
    state = store.kill_switch()
    # Then it succeeds on a new connection
    assert state.latched is True
    assert provider.backend_pid not in (None, old_pid)


def test_statement_timeout_is_set_and_not_retried(pg_url: str) -> None:
    # Given a provider with a 100 ms statement timeout
    provider = LambdaConnection(pg_url, SessionSettings(statement_timeout_ms=100))
    # When a query runs longer, Then it is cancelled (not retried) and the connection stays usable
    with pytest.raises(psycopg.errors.QueryCanceled):
        provider.run(lambda conn: conn.execute("SELECT count(*) FROM generate_series(1, 500000000)"))
    assert provider.run(lambda conn: conn.execute("SHOW statement_timeout").fetchone()) == ("100ms",)
    provider.close()


def test_pooled_connection_serves_the_store_and_recovers(database_url: str, pg_schema: str) -> None:
    # Given the streamer's pooled provider, pointed at the schema through the session settings
    migrate(database_url, pg_schema)
    pool = PooledConnection(database_url, SessionSettings(search_path=pg_schema), min_size=1, max_size=2)
    store = PostgresStore(pool)
    try:
        pid = pool.run(lambda conn: conn.info.backend_pid)
        # When its idle connection is terminated
        _terminate(database_url, pid)
        # Then the next call still works, on another connection in the test's schema
        assert store.kill_switch().latched is False
        assert pool.run(lambda conn: conn.info.backend_pid) != pid
    finally:
        store.close()


def test_one_lambda_connection_serves_concurrent_threads_one_transaction_at_a_time(pg_url: str) -> None:
    # Given the local cloud's situation: one container-wide connection, tasks of parallel executions on threads
    provider = LambdaConnection(pg_url)
    provider.run(lambda conn: conn.execute("CREATE TABLE tally (thread int, n int)"))

    def unit(thread: int, n: int) -> Callable[[psycopg.Connection[Any]], None]:
        def work(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                conn.execute("INSERT INTO tally VALUES (%s, %s)", (thread, n))
                with conn.transaction():  # a savepoint inside, as the repositories nest them
                    conn.execute("SELECT count(*) FROM tally WHERE thread = %s", (thread,))

        return work

    def worker(thread: int) -> None:
        for n in range(40):
            provider.run(unit(thread, n))

    # When four threads each commit forty transactions through it
    with ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(worker, t) for t in range(4)]:
            future.result()
    # Then none interleaved with another (psycopg would raise OutOfOrderTransactionNesting) and all committed
    assert provider.run(lambda conn: conn.execute("SELECT count(*) FROM tally").fetchone()) == (160,)
    provider.close()
