"""Risk: portfolio VaR/CVaR, Euler allocation, stress tests and limits; breaches alert and latch.

The book is folded from the stored fills (positions per venue and symbol) and marked at the cached
quote's mid, else the last close. Weights are signed notional / equity, equity being the configured
capital plus realised and unrealised P&L (fees are not deducted: they are in many currencies).
Returns are simple close-to-close returns of the bars of ``RiskConfig.timeframe`` over ``history``,
on the dates every held symbol has a bar. Every figure comes from :mod:`quant.risk` with its own
conventions (positive loss fractions of equity):

* VaR/CVaR by historical simulation, the normal model and Monte Carlo (seeded, so a rerun agrees);
* component VaR: parametric Euler (sums to the normal VaR) and historical (sums to the historical VaR);
* stress: historical windows (:data:`quant.risk.DEFAULT_WINDOWS`, replayed from stored bars; a window
  some held symbol has no bars for is left out) and the configured hypothetical shocks;
* limits: the configured VaR/CVaR/stress limits and gross/net/per-symbol exposure limits, evaluated by
  :func:`quant.limits.evaluate_limits`.

Each breach is published as ``risk.breached``; one alert lists them all; a hard breach latches the kill
switch (idempotent: the first reason stays). The snapshot stored is the ``primary`` method's figures.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from desk.domain.instruments import DECIMAL_CONTEXT, decimal_sum
from desk.domain.orders import Fill
from desk.domain.positions import Position, position_from_fills
from desk.events import new_event
from desk.ports import Alerts, Clock, EventBus, QuoteCache, Store
from desk.schemas.analytics import RiskBreach, RiskSnapshot
from desk.usecases.strategies import TIMEFRAME_STEPS
from quant.limits import Limit, evaluate_limits, exposure_limits
from quant.risk import (
    DEFAULT_WINDOWS,
    component_var,
    component_var_historical,
    historical_scenarios,
    portfolio_cvar,
    portfolio_var,
    stress_test,
)

__all__ = ["BREACH_EVENT_NAMESPACE", "METHODS", "Alerts", "RiskConfig", "RiskReport", "measure_risk"]

BREACH_EVENT_NAMESPACE = uuid.UUID("a4e1c9d2-7b3f-4f6a-9c1e-3d5b7a9e0f03")
METHODS = ("historical", "parametric", "monte_carlo")


def _default_limits() -> tuple[Limit, ...]:
    return (
        Limit("var_warning", "var", 0.02, hard=False),
        Limit("var", "var", 0.04, hard=True),
        Limit("cvar", "cvar", 0.06, hard=True),
        Limit("stress_warning", "stress", 0.25, hard=False),
    )


@dataclass(frozen=True)
class RiskConfig:
    """What the risk function measures and against which limits (``limits`` kinds: var, cvar, stress)."""

    portfolio: str = "desk"
    capital: Decimal = Decimal(1_000_000)
    timeframe: str = "1d"
    history: timedelta = timedelta(days=730)
    level: float = 0.99
    horizon: int = 1  # in bars of ``timeframe``
    primary: str = "historical"
    mc_paths: int = 10_000
    mc_seed: int = 7
    limits: tuple[Limit, ...] = field(default_factory=_default_limits)
    gross: float = 2.0
    net: float = 1.0
    per_symbol: float = 0.5
    exposure_hard: bool = True
    stress_windows: Mapping[str, tuple[str, str]] = field(default_factory=lambda: dict(DEFAULT_WINDOWS))
    shocks: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.primary not in METHODS:
            raise ValueError(f"primary must be one of {METHODS}, got {self.primary!r}")
        if self.timeframe not in TIMEFRAME_STEPS:
            raise ValueError(f"unsupported timeframe {self.timeframe!r}")


@dataclass(frozen=True)
class RiskReport:
    """Everything one measurement found; ``snapshot`` is what was stored."""

    snapshot: RiskSnapshot
    var: Mapping[str, float]
    cvar: Mapping[str, float]
    component_var: Mapping[str, float]
    component_var_historical: Mapping[str, float]
    stress: Mapping[str, float]  # scenario → book P&L in currency (negative = loss)
    utilisation: Mapping[str, float]
    breaches: tuple[RiskBreach, ...]
    latched: bool

    def summary(self) -> dict[str, Any]:
        return {
            "portfolio": self.snapshot.portfolio,
            "ts": self.snapshot.ts.isoformat(),
            "var": dict(self.var),
            "cvar": dict(self.cvar),
            "breaches": [b.metric for b in self.breaches],
            "latched": self.latched,
        }


def measure_risk(
    *,
    store: Store,
    quotes: QuoteCache,
    bus: EventBus,
    alerts: Alerts,
    clock: Clock,
    config: RiskConfig,
    correlation_id: str | None = None,
) -> RiskReport:
    """Measure the book now, store the snapshot, and act on breaches (see the module docstring)."""
    now = clock.now()
    positions = _positions(store.load_fills())
    open_keys = [k for k, p in positions.items() if not p.is_flat]
    marks = {key: _mark(key, store, quotes, config, now) for key in open_keys}
    held: dict[str, Decimal] = {}
    for venue, symbol in open_keys:
        value = DECIMAL_CONTEXT.multiply(positions[(venue, symbol)].quantity, marks[(venue, symbol)])
        held[symbol] = DECIMAL_CONTEXT.add(held.get(symbol, Decimal(0)), value)
    pnl = decimal_sum(p.realised_pnl for p in positions.values())
    pnl = DECIMAL_CONTEXT.add(pnl, decimal_sum(positions[k].unrealised_pnl(marks[k]) for k in open_keys))
    equity = DECIMAL_CONTEXT.add(config.capital, pnl)
    if equity <= 0:
        raise ValueError(f"{config.portfolio}: equity {equity} is not positive; risk ratios are undefined")
    venue_of = {symbol: venue for venue, symbol in open_keys}
    book = pd.Series({s: float(n) for s, n in held.items()}, dtype=float)
    var, cvar, comp, comp_hist, stress = _figures(book, float(equity), venue_of, store, config, now)
    worst = -min([0.0, *stress.values()]) / float(equity)
    values = {"var": var[config.primary], "cvar": cvar[config.primary], "stress": worst}
    if book.empty:  # exposure_limits needs a position; a flat book has zero gross and net
        exposure = [Limit(k, k, t, config.exposure_hard) for k, t in (("gross", config.gross), ("net", config.net))]
        exposure_values = {"gross": 0.0, "net": 0.0}
    else:
        exposure, exposure_values = exposure_limits(
            book, float(equity), config.gross, config.net, config.per_symbol, hard=config.exposure_hard
        )
    by_name = {lim.name: values[lim.kind] for lim in config.limits}
    table = evaluate_limits([*config.limits, *exposure], {**by_name, **exposure_values})
    snapshot = RiskSnapshot(
        portfolio=config.portfolio,
        ts=now,
        confidence=config.level,
        horizon_days=config.horizon * (TIMEFRAME_STEPS[config.timeframe] / timedelta(days=1)),
        var=var[config.primary],
        cvar=cvar[config.primary],
        method=config.primary,
        equity=equity,
        gross_exposure=decimal_sum(abs(n) for n in held.values()),
        net_exposure=decimal_sum(held.values()),
    )
    store.save_risk_snapshot(snapshot)
    breaches = tuple(
        RiskBreach(
            portfolio=config.portfolio,
            ts=now,
            metric=str(name),
            value=abs(float(row["value"])),
            limit=float(row["threshold"]),
            severity="critical" if row["hard"] else "warning",
            kill_switch=bool(row["hard"]),
        )
        for name, row in table[table["breached"]].iterrows()
    )
    latched = _act(breaches, config, store, bus, alerts, clock, now, correlation_id)
    return RiskReport(
        snapshot=snapshot,
        var=var,
        cvar=cvar,
        component_var=comp,
        component_var_historical=comp_hist,
        stress=stress,
        utilisation={str(k): float(v) for k, v in table["utilisation"].items()},
        breaches=breaches,
        latched=latched,
    )


def _positions(fills: Sequence[Fill]) -> dict[tuple[str, str], Position]:
    groups: dict[tuple[str, str], list[Fill]] = {}
    for fill in fills:
        groups.setdefault((fill.venue, fill.symbol), []).append(fill)
    return {(v, s): position_from_fills(group, venue=v, symbol=s) for (v, s), group in groups.items()}


def _mark(key: tuple[str, str], store: Store, quotes: QuoteCache, config: RiskConfig, now: datetime) -> Decimal:
    venue, symbol = key
    quote = quotes.get_quote(venue, symbol)
    if quote is not None:
        return quote.mid
    bars = store.load_bars(venue, symbol, config.timeframe, now - config.history, now)
    if not bars:
        raise LookupError(f"no quote and no bars to mark {venue} {symbol}")
    return bars[-1].close


def _closes(
    symbols: list[str], venue_of: Mapping[str, str], store: Store, config: RiskConfig, start: datetime, end: datetime
) -> pd.DataFrame:
    columns = {}
    for symbol in symbols:
        bars = store.load_bars(venue_of[symbol], symbol, config.timeframe, start, end)
        columns[symbol] = pd.Series({pd.Timestamp(b.ts): float(b.close) for b in bars}, dtype=float)
    return pd.DataFrame(columns, columns=symbols)


def _figures(
    book: pd.Series, equity: float, venue_of: Mapping[str, str], store: Store, config: RiskConfig, now: datetime
) -> tuple[dict[str, float], dict[str, float], dict[str, float], dict[str, float], dict[str, float]]:
    if book.empty:
        zeros = dict.fromkeys(METHODS, 0.0)
        return zeros, dict(zeros), {}, {}, {}
    symbols = list(book.index)
    returns = _closes(symbols, venue_of, store, config, now - config.history, now).dropna().pct_change().dropna()
    if len(returns) < 30:
        raise LookupError(f"{len(returns)} common returns for {symbols}: too few to measure risk")
    weights = (book / equity).to_numpy()
    var, cvar = {}, {}
    for method in METHODS:
        kwargs: dict[str, Any] = {"horizon": config.horizon}
        if method == "monte_carlo":
            kwargs |= {"n_paths": config.mc_paths, "seed": config.mc_seed}
        var[method] = _scalar(portfolio_var(returns, weights, config.level, method, **kwargs))
        cvar[method] = _scalar(portfolio_cvar(returns, weights, config.level, method, **kwargs))
    w = pd.Series(weights, index=symbols)
    comp = component_var(w, returns.cov(), config.level, mu=returns.mean(), horizon=config.horizon)
    comp_hist = component_var_historical(returns, w, config.level) if config.horizon == 1 else pd.Series(dtype=float)
    return var, cvar, _floats(comp), _floats(comp_hist), _stress(book, venue_of, store, config)


def _stress(book: pd.Series, venue_of: Mapping[str, str], store: Store, config: RiskConfig) -> dict[str, float]:
    symbols = list(book.index)
    frames = []
    for name, (first, last) in config.stress_windows.items():
        start, end = pd.Timestamp(first, tz="UTC"), pd.Timestamp(last, tz="UTC")
        # A week before the start so a window opening on a holiday starts from the previous close.
        prices = _closes(symbols, venue_of, store, config, start - timedelta(days=7), end + timedelta(days=1))
        if prices.empty or prices.isna().all().any():
            continue
        prices.index = pd.DatetimeIndex(prices.index).tz_convert(None)
        moves = historical_scenarios(prices, {name: (first, last)}, missing="skip")
        if not moves.empty and not moves.isna().to_numpy().any():
            frames.append(moves)
    results: dict[str, float] = {}
    if frames:
        results |= _floats(stress_test(book, pd.concat(frames))["total"])
    if config.shocks:
        results |= _floats(stress_test(book, config.shocks)["total"])
    return results


def _scalar(value: Any) -> float:
    return float(value)


def _floats(values: Any) -> dict[str, float]:
    return {str(k): float(v) for k, v in pd.Series(values).items()}


def _act(
    breaches: tuple[RiskBreach, ...],
    config: RiskConfig,
    store: Store,
    bus: EventBus,
    alerts: Alerts,
    clock: Clock,
    now: datetime,
    correlation_id: str | None,
) -> bool:
    if not breaches:
        return False
    events = [
        new_event(
            "risk.breached",
            b,
            clock=clock,
            correlation_id=correlation_id,
            event_id=str(uuid.uuid5(BREACH_EVENT_NAMESPACE, f"{b.portfolio}|{b.ts.isoformat()}|{b.metric}")),
        )
        for b in breaches
    ]
    bus.publish(events)
    hard = [b for b in breaches if b.kill_switch]
    lines = [f"{b.severity}: {b.metric} = {b.value:.6g} > {b.limit:.6g}" for b in breaches]
    level = "HARD" if hard else "soft"
    alerts.publish(f"[{config.portfolio}] {level} risk limit breach ({len(breaches)})", "\n".join(lines))
    if hard:
        reason = "risk: " + ", ".join(b.metric for b in hard)
        store.latch_kill_switch(reason, at=now, by="risk")
    return bool(hard)
