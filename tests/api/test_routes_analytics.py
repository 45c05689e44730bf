"""Regime, correlation, execution, risk and strategy routes on real stored bars."""

from __future__ import annotations

import base64
import math
from decimal import Decimal

from desk.domain.orders import Fill, Side
from tests.api.conftest import Api, Desk, record_signals


def test_regime_probabilities_are_a_distribution_from_stored_bars(api: Api, desk: Desk) -> None:
    reply = api.get("/v1/regime/probability/BTC%2FUSDT?lookback=400&steps=2")
    assert reply.status == 200, reply.body
    assert math.isclose(sum(reply.body["probabilities"].values()), 1.0, abs_tol=1e-9)
    assert reply.body["current"] in reply.body["transition"]


def test_regime_current_and_bulk_report_what_is_missing(api: Api, desk: Desk) -> None:
    assert api.get("/v1/regime/current/BTC%2FUSDT").status == 404
    bulk = api.post("/v1/regime/bulk", {"symbols": ["BTC/USDT", "ETH/USDT"]})
    assert bulk.status == 200 and bulk.body == {"regimes": [], "missing": ["BTC/USDT", "ETH/USDT"]}


def test_correlation_matrix_is_symmetric_with_unit_diagonal(api: Api, desk: Desk) -> None:
    reply = api.get("/v1/correlation/matrix?symbols=BTC/USDT,ETH/USDT,LTC/USDT&window=120&method=ledoit_wolf")
    assert reply.status == 200, reply.body
    m = reply.body["matrix"]
    assert all(math.isclose(m[i][i], 1.0) and math.isclose(m[i][1 - i], m[1 - i][i]) for i in range(2))
    assert api.get("/v1/correlation/matrix").status == 404  # no snapshot stored


def test_pca_sizing_and_stress(api: Api, desk: Desk) -> None:
    pca = api.get("/v1/correlation/pca/momentum_crypto")
    assert pca.status == 200, pca.body
    assert math.isclose(sum(pca.body["explained_variance_ratio"]), 1.0, abs_tol=1e-9)
    sizing = api.post(
        "/v1/correlation/position-sizing",
        {"venue": "binance", "symbols": ["BTC/USDT", "ETH/USDT", "LTC/USDT"], "method": "hrp", "capital": "1000"},
    )
    assert sizing.status == 200, sizing.body
    assert math.isclose(sum(sizing.body["weights"].values()), 1.0, abs_tol=1e-9)
    stress = api.get("/v1/correlation/stress-test?symbols=BTC/USDT,ETH/USDT&quantile=0.1")
    assert stress.status == 200 and stress.body["stressed_observations"] >= 2


def test_execution_schedule_cost_route_and_venues(api: Api, desk: Desk) -> None:
    body = {"venue": "binance", "symbol": "BTC/USDT", "side": "buy", "quantity": "2", "schedule": "almgren_chriss"}
    plan = api.post("/v1/execution/optimize", body)
    assert plan.status == 200, plan.body
    assert math.isclose(sum(s["quantity"] for s in plan.body["slices"]), 2.0, rel_tol=1e-9)
    cost = api.get("/v1/execution/cost-estimate?symbol=BTC/USDT&side=sell&quantity=1")
    assert cost.status == 200 and cost.body["total_bps"] > 0
    route = api.post(
        "/v1/execution/route", {"symbol": "BTC/USDT", "side": "buy", "quantity": "1", "venues": ["binance", "kraken"]}
    )
    assert route.status == 200 and route.body["filled"] == 1.0 and route.body["missing_books"] == ["kraken"]
    venues = api.get("/v1/execution/venue-analysis?symbol=BTC/USDT&venues=binance,kraken")
    assert venues.status == 200 and venues.body["best"] == "binance"


def test_risk_of_the_book_stress_kelly_and_alerts(api: Api, desk: Desk) -> None:
    assert api.get("/v1/risk/portfolio-var").status == 422  # nothing held yet
    for i, (symbol, qty) in enumerate((("BTC/USDT", "1"), ("ETH/USDT", "-10"))):
        side = Side.BUY if not qty.startswith("-") else Side.SELL
        desk.store.record_fill(
            Fill(venue="binance", venue_trade_id=f"t{i}", client_order_id=f"c{i}-0", symbol=symbol, side=side,
                 quantity=abs(Decimal(qty)), price=Decimal(100), occurred_at=desk.clock.now())
        )  # fmt: skip
    var = api.get("/v1/risk/portfolio-var?confidence=0.95")
    assert var.status == 200, var.body
    assert 0 < var.body["var"] <= var.body["cvar"]
    stress = api.post("/v1/risk/stress-test", {"scenarios": {"crash": {"BTC/USDT": -0.5}}})
    assert stress.status == 200 and stress.body["scenarios"][0]["pnl"]["ETH/USDT"] == 0.0
    history = api.post("/v1/risk/stress-test", {})
    assert history.status == 200 and any(s["name"] == "worst_5_bars" for s in history.body["scenarios"])
    kelly = api.get("/v1/risk/kelly-sizing?symbols=BTC/USDT,ETH/USDT&fraction=0.5")
    assert kelly.status == 200 and set(kelly.body["weights"]) == {"BTC/USDT", "ETH/USDT"}


def test_strategy_signals_are_the_stored_ones_newest_first(api: Api, desk: Desk) -> None:
    # Given nothing stored yet, then what the signals function stores on five BTC/USDT regime changes
    empty = api.get("/v1/strategy/signals/momentum_crypto")
    assert empty.status == 200 and empty.body["signals"] == [] and empty.body["next_cursor"] is None
    stored = record_signals(desk, 5)
    assert len(stored) == 10  # momentum_crypto trades BTC/USDT and ETH/USDT
    # When the route is read a page of 3 at a time
    pages, cursor = [], None
    while True:
        reply = api.get("/v1/strategy/signals/momentum_crypto?limit=3" + (f"&cursor={cursor}" if cursor else ""))
        assert reply.status == 200, reply.body
        pages.append(reply.body["signals"])
        cursor = reply.body["next_cursor"]
        if cursor is None:
            break
    # Then every row of the signals table comes back once, newest bar first (ties by id), as stored
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    seen = [s for page in pages for s in page]
    rows = desk.store.db.run(
        lambda conn: conn.execute(
            "SELECT signal_id, symbol, target_weight FROM signals WHERE strategy = 'momentum_crypto'"
            " ORDER BY ts DESC, signal_id DESC"
        ).fetchall()
    )
    assert [(s["signal_id"], s["symbol"], s["target_weight"]) for s in seen] == [tuple(r) for r in rows]
    assert {s["signal_id"] for s in seen} == {s.signal_id for s in stored}
    # (the trigger's regime is BTC/USDT's; no ETH/USDT regime is stored)
    assert all((s["regime"] is not None) == (s["symbol"] == "BTC/USDT") and s["venue"] == "binance" for s in seen)
    # And a symbol filter, a bad cursor and an unknown strategy
    eth = api.get("/v1/strategy/signals/momentum_crypto?symbol=ETH/USDT&limit=500")
    assert eth.status == 200 and [s["symbol"] for s in eth.body["signals"]] == ["ETH/USDT"] * 5
    for text in (
        "not-a-cursor",
        "2020-01-15T00:00:00|sg1",
        "2020-01-15T00:00:00+00:00|sg\x00",
        "0001-01-01T00:00:00+01:00|sg",
    ):
        bad = base64.urlsafe_b64encode(text.encode()).decode()
        assert api.get(f"/v1/strategy/signals/momentum_crypto?cursor={bad}").status == 400, text
    assert api.get("/v1/strategy/signals/unknown").status == 404


def test_strategy_performance_and_allocation(api: Api, desk: Desk) -> None:
    perf = api.get("/v1/strategy/performance?strategy=momentum_crypto&lookback_days=300")
    assert perf.status == 200 and perf.body["metrics"]["bars"] > 100
    alloc = api.post("/v1/strategy/allocate", {"strategies": ["momentum_crypto"], "capital": "1000"})
    assert alloc.status == 200 and alloc.body["capital"] == {"momentum_crypto": "1000"}


def test_small_backtests_answer_now_and_large_ones_become_jobs(api: Api, desk: Desk) -> None:
    small = {"kind": "momentum", "params": {"lookback": 20, "skip": 1}, "venue": "binance",
             "symbols": ["BTC/USDT"], "start": "2018-09-01T00:00:00Z", "end": "2019-10-18T00:00:00Z"}  # fmt: skip
    now = api.post("/v1/strategy/backtest", small)
    assert now.status == 200, now.body
    assert now.body["status"] == "completed" and now.body["result"]["bars"] > 300
    large = {**small, "symbols": ["BTC/USDT", "ETH/USDT", "LTC/USDT"], "start": "2010-01-01T00:00:00Z"}
    queued = api.post("/v1/strategy/backtest", large)
    assert queued.status == 202 and queued.body["status"] == "queued"
    polled = api.get(f"/v1/strategy/backtest/{queued.body['job_id']}")
    assert polled.status == 200 and polled.body["status"] == "completed"  # the inline runner ran it
    bad = api.post("/v1/strategy/backtest", {**small, "params": {"nope": 1}})
    assert bad.status == 422
