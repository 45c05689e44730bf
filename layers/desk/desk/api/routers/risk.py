# mypy: disable-error-code="no-untyped-call"
"""Risk: VaR/CVaR of the book, stress tests, Kelly sizing, alert rules and the kill switch.

Alert rules are desk state (a critical rule may latch the kill switch), so they live in PostgreSQL
(:mod:`desk.store.alerts`): created once per (portfolio, name), a repeat answers the stored rule and a
repeat with other settings is a 409.
"""

from __future__ import annotations

from typing import Annotated, Literal

import pandas as pd
from aws_lambda_powertools.event_handler import Depends
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from desk.api import deps
from desk.api.auth import TRADE, Claims
from desk.api.errors import Unprocessable, documented
from desk.api.frames import closes, finite, quant_errors, returns_of, split_symbols
from desk.api.models import (
    AlertRule,
    AlertRuleRequest,
    AlertRulesPage,
    KellyResponse,
    KillSwitchRequest,
    PortfolioVarResponse,
    StressScenarioResult,
    StressTestRequest,
    StressTestResponse,
)
from desk.api.routers.market import SymbolsQuery, TimeframeQuery, VenueQuery
from desk.ports import Clock
from desk.schemas.trading import KillSwitchState
from desk.store import AlertRuleRecord, PostgresStore
from quant.portfolio import kelly
from quant.risk import cvar_historical, cvar_parametric, var_historical, var_parametric
from quant.risk_stress import DEFAULT_WINDOWS, historical_scenarios, stress_test

router = Router()
PortfolioQuery = Annotated[str, Query(min_length=1, max_length=128, pattern=r"^[!-~]+$", examples=["desk"])]


def _book(store: PostgresStore, clock: Clock, timeframe: str, window: int) -> tuple[dict[str, float], pd.DataFrame]:
    """Signed notional per symbol (quantity x last close) and the closes behind it."""
    now = clock.now()
    held = [p for p in store.positions(as_of=now) if p.quantity != 0]
    if not held:
        raise Unprocessable("the book holds no positions")
    by_venue: dict[str, list[str]] = {}
    for p in held:
        by_venue.setdefault(p.venue, []).append(p.symbol)
    frames = [closes(store, venue, symbols, timeframe, now, window + 1) for venue, symbols in by_venue.items()]
    prices = pd.concat(frames, axis=1).dropna()
    if len(prices) < 3:
        raise Unprocessable("the held instruments share too few bars")
    exposures = {p.symbol: float(p.quantity) * float(prices[p.symbol].iloc[-1]) for p in held}
    return exposures, prices


@router.get("/risk/portfolio-var", tags=["risk"], summary="VaR and CVaR of the current book", responses=documented())
def portfolio_var(
    store: Annotated[PostgresStore, Depends(deps.store)],
    clock: Annotated[Clock, Depends(deps.clock)],
    confidence: Annotated[float, Query(ge=0.8, le=0.999, examples=[0.95])] = 0.99,
    method: Annotated[Literal["historical", "parametric"], Query(examples=["parametric"])] = "historical",
    timeframe: TimeframeQuery = "1d",
    window: Annotated[int, Query(ge=20, le=2_000, examples=[250])] = 250,
) -> PortfolioVarResponse:
    exposures, prices = _book(store, clock, timeframe, window)
    gross = sum(abs(v) for v in exposures.values())
    weights = pd.Series({s: v / gross for s, v in exposures.items()})
    with quant_errors():
        book = returns_of(prices[list(weights.index)]) @ weights
        if method == "historical":
            var, cvar = var_historical(book, confidence), cvar_historical(book, confidence)
        else:
            var, cvar = var_parametric(book, confidence), cvar_parametric(book, confidence)
    return PortfolioVarResponse(
        as_of=clock.now(),
        confidence=confidence,
        method=method,
        observations=len(book),
        var=finite(var, "VaR"),
        cvar=finite(cvar, "CVaR"),
        gross_exposure=gross,
        net_exposure=sum(exposures.values()),
        exposures=exposures,
    )


def _worst_windows(prices: pd.DataFrame, exposures: pd.Series) -> dict[str, tuple[str, str]]:
    """The book's own worst 1-, 5- and 20-bar moves in the stored history, as scenario windows."""
    book = (prices[list(exposures.index)] * exposures / prices[list(exposures.index)].iloc[0]).sum(axis=1)
    windows: dict[str, tuple[str, str]] = {}
    for bars in (1, 5, 20):
        if len(book) > bars:
            change = book.diff(bars)
            end = change.idxmin()
            position = list(book.index).index(end)
            start = book.index[position - bars]
            windows[f"worst_{bars}_bars"] = (str(start), str(end))
    return windows


@router.post(
    "/risk/stress-test", tags=["risk"], summary="P&L of a book under historical or given moves", responses=documented()
)
def stress(
    request: StressTestRequest,
    store: Annotated[PostgresStore, Depends(deps.store)],
    clock: Annotated[Clock, Depends(deps.clock)],
) -> StressTestResponse:
    if request.positions is None:
        exposures, prices = _book(store, clock, request.timeframe, 2_000)
    else:
        exposures = dict(request.positions)
        prices = None
    notional = pd.Series(exposures, dtype=float)
    with quant_errors():
        if request.scenarios is not None:
            table = stress_test(notional, request.scenarios)
        else:
            if prices is None:
                prices = closes(store, request.venue, list(notional.index), request.timeframe, clock.now(), 2_000)
            if isinstance(prices.index, pd.DatetimeIndex) and prices.index.tz is not None:
                prices = prices.set_axis(prices.index.tz_convert(None))  # the windows are UTC dates
            windows = {**DEFAULT_WINDOWS, **_worst_windows(prices, notional)}
            table = stress_test(notional, historical_scenarios(prices, windows, missing="skip"))
    results = [
        StressScenarioResult(
            name=str(name),
            pnl={str(k): finite(v, "P&L") for k, v in row.to_dict().items() if k != "total"},
            total=finite(row["total"], "P&L"),
        )
        for name, row in table.iterrows()
    ]
    return StressTestResponse(exposures={str(s): float(v) for s, v in notional.items()}, scenarios=results)


@router.get(
    "/risk/kelly-sizing", tags=["risk"], summary="Fractional Kelly weights from stored returns", responses=documented()
)
def kelly_sizing(
    symbols: SymbolsQuery,
    store: Annotated[PostgresStore, Depends(deps.store)],
    clock: Annotated[Clock, Depends(deps.clock)],
    venue: VenueQuery = "binance",
    timeframe: TimeframeQuery = "1d",
    fraction: Annotated[float, Query(gt=0.0, le=1.0, examples=[0.5])] = 0.5,
    window: Annotated[int, Query(ge=20, le=2_000, examples=[250])] = 250,
) -> KellyResponse:
    names = split_symbols(symbols)
    prices = closes(store, venue, names, timeframe, clock.now(), window + 1)
    with quant_errors():
        rets = returns_of(prices)
        weights = kelly(rets.mean(), rets.cov(), fraction=fraction)
    return KellyResponse(
        venue=venue,
        timeframe=timeframe,
        fraction=fraction,
        observations=len(rets),
        weights={s: finite(weights[s], "weight") for s in names},
    )


def _alert_rule(record: AlertRuleRecord) -> AlertRule:
    return AlertRule.model_validate(
        {
            "name": record.name,
            "portfolio": record.portfolio,
            "metric": record.metric,
            "threshold": record.threshold,
            "severity": record.severity,
            "latch_kill_switch": record.latch_kill_switch,
            "rule_id": record.rule_id,
            "created_at": record.created_at,
            "created_by": record.created_by,
        }
    )


@router.post(
    "/risk/alert",
    tags=["risk"],
    summary="Store an alert rule (idempotent on portfolio and name; other settings under the same name: 409)",
    responses=documented(),
)
def alert(
    request: AlertRuleRequest,
    store: Annotated[PostgresStore, Depends(deps.store)],
    clock: Annotated[Clock, Depends(deps.clock)],
    caller: Annotated[Claims, Depends(deps.caller)],
) -> AlertRule:
    caller.require(TRADE)
    rule = AlertRuleRecord(
        portfolio=request.portfolio,
        name=request.name,
        metric=request.metric,
        threshold=float(request.threshold),
        severity=request.severity,
        latch_kill_switch=request.latch_kill_switch,
        created_at=clock.now(),
        created_by=caller.subject,
    )
    return _alert_rule(store.create_alert_rule(rule))  # AlertRuleConflict is a 409


@router.get(
    "/risk/alert", tags=["risk"], summary="A portfolio's alert rules by name, a page at a time", responses=documented()
)
def alert_rules(
    store: Annotated[PostgresStore, Depends(deps.store)],
    portfolio: PortfolioQuery = "desk",
    limit: Annotated[int, Query(ge=1, le=500, examples=[50])] = 100,
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            pattern=r"^[A-Za-z0-9_.-]+$",
            description="`next_cursor` of the previous page (rules named after it)",
            examples=["cvar-limit"],
        ),
    ] = None,
) -> AlertRulesPage:
    # One more than asked: whether a next page exists without a second query.
    rows = store.alert_rules(portfolio, after=cursor, limit=limit + 1)
    page = rows[:limit]
    more = len(rows) > limit
    return AlertRulesPage(
        portfolio=portfolio, rules=[_alert_rule(r) for r in page], next_cursor=page[-1].name if more else None
    )


@router.get("/risk/kill-switch", tags=["risk"], summary="The kill-switch latch", responses=documented())
def kill_switch(store: Annotated[PostgresStore, Depends(deps.store)]) -> KillSwitchState:
    return store.kill_switch()


@router.post("/risk/kill-switch", tags=["risk"], summary="Latch or release the kill switch", responses=documented())
def set_kill_switch(
    request: KillSwitchRequest,
    store: Annotated[PostgresStore, Depends(deps.store)],
    clock: Annotated[Clock, Depends(deps.clock)],
    caller: Annotated[Claims, Depends(deps.caller)],
) -> KillSwitchState:
    caller.require(TRADE)
    if request.action == "latch":
        return store.latch_kill_switch(request.reason, clock.now(), caller.subject)
    return store.release_kill_switch(clock.now(), caller.subject, reason=request.reason)


__all__ = ["router"]
