"""Risk use case on real S&P 500 closes with the in-memory ports and a recording alert sink."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from desk.clock import FixedClock
from desk.domain.orders import Fill, Side
from desk.local import catalogue
from desk.local.memory import FrameMarketData, MemoryEventBus, MemoryQuoteCache, MemoryStore
from desk.usecases.risk import RiskConfig, RiskReport, measure_risk
from quant.limits import Limit
from quant.risk import (
    component_var,
    component_var_historical,
    historical_scenarios,
    portfolio_cvar,
    portfolio_var,
    stress_test,
)

BOOK = {"AAPL": (Side.BUY, "150"), "JPM": (Side.BUY, "120"), "XOM": (Side.SELL, "90")}
CONFIG = RiskConfig(portfolio="test", capital=Decimal(100_000), history=timedelta(days=730))


class RecordingAlerts:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def publish(self, subject: str, message: str) -> None:
        self.sent.append((subject, message))


class World:
    def __init__(self) -> None:
        closes = catalogue.sp500_stocks()[list(BOOK)].loc["2007-01-01":]
        self.closes = closes
        frames = {
            (s, "1d"): pd.DataFrame(
                {"open": closes[s], "high": closes[s], "low": closes[s], "close": closes[s], "volume": 1.0}
            )
            for s in BOOK
        }
        feed = FrameMarketData("alpaca", frames)
        self.store, self.quotes, self.bus, self.alerts = (
            MemoryStore(),
            MemoryQuoteCache(),
            MemoryEventBus(),
            RecordingAlerts(),
        )
        for s in BOOK:
            self.store.upsert_bars(feed.series(s, "1d"))
        self.now = datetime(2022, 12, 29, 21, tzinfo=UTC)
        self.clock = FixedClock(self.now)
        # Bought (or sold) a month before the end, so the book carries unrealised P&L.
        entry = closes.iloc[-21]
        for i, (symbol, (side, qty)) in enumerate(BOOK.items()):
            fill = Fill(
                venue="alpaca",
                venue_trade_id=f"t{i}",
                client_order_id=f"ldtest-{i}",
                symbol=symbol,
                side=side,
                quantity=Decimal(qty),
                price=Decimal(repr(float(entry[symbol]))),
                occurred_at=self.now - timedelta(days=30),
            )
            self.store.record_fill(fill)

    def measure(self, config: RiskConfig = CONFIG) -> RiskReport:
        return measure_risk(
            store=self.store, quotes=self.quotes, bus=self.bus, alerts=self.alerts, clock=self.clock, config=config
        )

    def expected_book(self) -> tuple[pd.Series, float]:
        entry, last = self.closes.iloc[-21], self.closes.iloc[-1]
        signed = pd.Series({s: (1 if side is Side.BUY else -1) * float(q) for s, (side, q) in BOOK.items()})
        notional = signed * last
        equity = 100_000 + float((signed * (last - entry)).sum())
        return notional, equity


def test_snapshot_figures_equal_quant_risk_on_the_same_data() -> None:
    # Given a long AAPL/JPM, short XOM book and two years of closes
    world = World()

    # When risk is measured
    report = world.measure()

    # Then every figure is quant.risk's on the same returns and weights
    notional, equity = world.expected_book()
    window = world.closes.loc[pd.Timestamp(world.now - CONFIG.history).tz_localize(None) :]
    returns = window.pct_change().dropna()
    w = (notional / equity).to_numpy()
    for method, extra in (("historical", {}), ("parametric", {}), ("monte_carlo", {"n_paths": 10_000, "seed": 7})):
        assert report.var[method] == pytest.approx(float(portfolio_var(returns, w, 0.99, method, **extra)), rel=1e-9)
        assert report.cvar[method] == pytest.approx(float(portfolio_cvar(returns, w, 0.99, method, **extra)), rel=1e-9)
    ws = pd.Series(w, index=returns.columns)
    expected_comp = component_var(ws, returns.cov(), 0.99, mu=returns.mean())
    assert report.component_var == pytest.approx(expected_comp.to_dict(), rel=1e-9)
    assert sum(report.component_var_historical.values()) == pytest.approx(report.var["historical"], rel=1e-9)
    assert report.component_var_historical == pytest.approx(component_var_historical(returns, ws, 0.99).to_dict())
    # And the stress P&L replays the 2008, 2020 and 2022 windows on the held notionals
    moves = historical_scenarios(world.closes, missing="skip")
    assert report.stress == pytest.approx(stress_test(notional, moves)["total"].to_dict(), rel=1e-9)
    # And the stored snapshot carries the historical figures and the book's exposures
    snap = world.store.latest_risk_snapshot("test")
    assert snap == report.snapshot and snap is not None
    assert (snap.var, snap.cvar, snap.method) == (report.var["historical"], report.cvar["historical"], "historical")
    assert float(snap.equity) == pytest.approx(equity, rel=1e-12)
    assert float(snap.gross_exposure) == pytest.approx(notional.abs().sum(), rel=1e-12)
    assert float(snap.net_exposure) == pytest.approx(notional.sum(), rel=1e-12)
    assert report.utilisation["var"] == pytest.approx(report.var["historical"] / 0.04)


def test_a_hard_breach_latches_the_kill_switch_and_sends_one_alert() -> None:
    # Given a hard VaR limit far below the book's VaR
    world = World()
    config = replace(CONFIG, limits=(Limit("var", "var", 0.0005, hard=True),))

    # When risk is measured
    report = world.measure(config)

    # Then the breach is published, one alert goes out, and the kill switch is latched by risk
    assert [b.metric for b in report.breaches] == ["var"] and report.latched
    assert [e.data_as(type(report.breaches[0])).severity for e in world.bus.of_type("risk.breached")] == ["critical"]
    assert len(world.alerts.sent) == 1 and "HARD" in world.alerts.sent[0][0]
    state = world.store.kill_switch()
    assert state.latched and state.changed_by == "risk" and state.reason is not None and "var" in state.reason


def test_a_soft_breach_alerts_without_latching() -> None:
    # Given only a soft VaR limit breached
    world = World()
    config = replace(CONFIG, limits=(Limit("var_warning", "var", 0.0005, hard=False),))

    # When risk is measured
    report = world.measure(config)

    # Then one warning alert goes out and trading is not stopped
    assert [(b.metric, b.severity, b.kill_switch) for b in report.breaches] == [("var_warning", "warning", False)]
    assert len(world.alerts.sent) == 1 and not world.store.kill_switch().latched and not report.latched


def test_within_limits_nothing_is_sent_and_an_empty_book_measures_zero() -> None:
    # Given the default limits, then an empty store
    world = World()
    report = world.measure(replace(CONFIG, gross=5.0, per_symbol=1.0, limits=(Limit("var", "var", 0.5),)))
    empty = measure_risk(
        store=MemoryStore(),
        quotes=MemoryQuoteCache(),
        bus=world.bus,
        alerts=world.alerts,
        clock=world.clock,
        config=CONFIG,
    )

    # Then neither breaches, alerts or latches, and the empty book has zero risk and exposure
    assert report.breaches == () and empty.breaches == ()
    assert world.alerts.sent == [] and world.bus.published == [] and not world.store.kill_switch().latched
    assert (empty.snapshot.var, empty.snapshot.gross_exposure, empty.snapshot.equity) == (0.0, 0, Decimal(100_000))
