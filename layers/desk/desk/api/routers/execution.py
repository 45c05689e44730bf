# mypy: disable-error-code="no-untyped-call"
"""Execution analytics: schedules, pre-trade cost, venue routing and venue quality (cached books, stored bars)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from aws_lambda_powertools.event_handler import Depends
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from desk.api import deps
from desk.api.errors import Unprocessable, documented
from desk.api.frames import bar_frame, finite, path_symbol, quant_errors, split_symbols
from desk.api.models import (
    CostEstimateResponse,
    OptimizeRequest,
    OptimizeResponse,
    RouteAllocation,
    RouteRequest,
    RouteResponse,
    ScheduleSlice,
    VenueAnalysisResponse,
    VenueQuality,
)
from desk.api.routers.market import SymbolQuery, TimeframeQuery, VenueQuery
from desk.domain.orders import Side
from desk.ports import Clock, QuoteCache, Store
from desk.settings import get_settings
from desk.store import PostgresStore
from desk.usecases.strategies import TIMEFRAME_STEPS
from quant.costs import Market, Order, estimate_cost
from quant.execution import almgren_chriss, twap, vwap
from quant.routing import choose_venues

router = Router()
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class _Arrival:
    bid: float
    ask: float
    adv: float
    daily_vol: float
    profile: np.ndarray  # mean volume per bar of the day, for VWAP

    @property
    def mid(self) -> float:
        return 0.5 * (self.bid + self.ask)


def _arrival(store: Store, quotes: QuoteCache, clock: Clock, venue: str, symbol: str, timeframe: str) -> _Arrival:
    """The touch (cached quote, else last close) and daily volume/volatility from the last 60 bars."""
    frame = bar_frame(store, venue, symbol, timeframe, clock.now(), 60)
    if len(frame) < 3:
        raise Unprocessable(f"{len(frame)} bars of {venue} {symbol} are too few to estimate volatility")
    per_day = _DAY / TIMEFRAME_STEPS[timeframe]
    rets = frame["close"].pct_change().dropna()
    quote = quotes.get_quote(venue, symbol)
    last = float(frame["close"].iloc[-1])
    bid, ask = (float(quote.bid), float(quote.ask)) if quote is not None else (last, last)
    by_time = frame["volume"].groupby(pd.DatetimeIndex(frame.index).time).mean()
    return _Arrival(
        bid=bid,
        ask=ask,
        adv=float(frame["volume"].mean()) * per_day,
        daily_vol=finite(rets.std(ddof=1) * math.sqrt(per_day), "daily volatility"),
        profile=by_time.to_numpy(dtype=float),
    )


@router.post(
    "/execution/optimize",
    tags=["execution"],
    summary="An execution schedule for a parent order",
    responses=documented(),
)
def optimize(
    request: OptimizeRequest,
    store: Annotated[PostgresStore, Depends(deps.store)],
    quotes: Annotated[QuoteCache, Depends(deps.quote_cache)],
    clock: Annotated[Clock, Depends(deps.clock)],
    timeframe: TimeframeQuery = "1d",
) -> OptimizeResponse:
    arrival = _arrival(store, quotes, clock, request.venue, request.symbol, timeframe)
    quantity = float(request.quantity)
    horizon = timedelta(minutes=request.horizon_minutes)
    n = request.slices
    with quant_errors():
        if request.schedule == "almgren_chriss":
            if arrival.adv <= 0:
                raise Unprocessable("no traded volume: Almgren-Chriss needs a positive ADV")
            spread = max(arrival.ask - arrival.bid, arrival.mid * 1e-4)
            # Almgren & Chriss (2000) §4 calibration, as the cost optimiser uses it.
            result = almgren_chriss(
                X=quantity,
                T=horizon / _DAY,
                N=n,
                sigma=arrival.daily_vol * arrival.mid,
                eta=spread / (0.01 * arrival.adv),
                epsilon=0.5 * spread + arrival.mid * request.fee_bps / 1e4,
                gamma=spread / (0.1 * arrival.adv),
                lam=request.risk_aversion,
            )
            sizes = np.asarray(result.trades, dtype=float)
        elif request.schedule == "vwap" and arrival.profile.sum() > 0:
            profile = np.resize(arrival.profile, n)
            sizes = vwap(quantity, profile)["quantity"].to_numpy(dtype=float)
        else:
            sizes = twap(quantity, 0.0, 1.0, n)["quantity"].to_numpy(dtype=float)
        cost = estimate_cost(
            Order(side=request.side.value, quantity=quantity / len(sizes)),
            Market(bid=arrival.bid, ask=arrival.ask, adv=max(arrival.adv, 1e-12), daily_vol=arrival.daily_vol),
            request.fee_bps,
        )
    return OptimizeResponse(
        schedule=request.schedule,
        venue=request.venue,
        symbol=request.symbol,
        side=request.side,
        quantity=request.quantity,
        slices=[
            ScheduleSlice(slice_no=k, offset_seconds=(horizon * k / len(sizes)).total_seconds(), quantity=finite(q))
            for k, q in enumerate(sizes)
        ],
        expected_cost_bps=finite(cost.total_bps, "cost"),
    )


@router.get(
    "/execution/cost-estimate",
    tags=["execution"],
    summary="Pre-trade cost: fees, spread, impact",
    responses=documented(),
)
def cost_estimate(
    symbol: SymbolQuery,
    side: Annotated[Side, Query(examples=["sell"])],
    quantity: Annotated[float, Query(gt=0.0, le=1e12, examples=[1.0])],
    store: Annotated[PostgresStore, Depends(deps.store)],
    quotes: Annotated[QuoteCache, Depends(deps.quote_cache)],
    clock: Annotated[Clock, Depends(deps.clock)],
    venue: VenueQuery = "binance",
    timeframe: TimeframeQuery = "1d",
    liquidity: Annotated[Literal["taker", "maker"], Query()] = "taker",
    fee_bps: Annotated[float, Query(ge=0.0, le=1_000.0, examples=[10.0])] = 10.0,
) -> CostEstimateResponse:
    name = path_symbol(symbol, "query.symbol")
    arrival = _arrival(store, quotes, clock, venue, name, timeframe)
    with quant_errors():
        est = estimate_cost(
            Order(side=side.value, quantity=quantity, liquidity=liquidity),
            Market(bid=arrival.bid, ask=arrival.ask, adv=max(arrival.adv, 1e-12), daily_vol=arrival.daily_vol),
            fee_bps,
        )
    return CostEstimateResponse(
        venue=venue,
        symbol=name,
        side=side,
        quantity=Decimal(repr(quantity)),
        arrival_mid=est.arrival_mid,
        notional=finite(est.notional),
        adv=arrival.adv,
        daily_vol=arrival.daily_vol,
        fees=finite(est.fees),
        spread=finite(est.spread),
        impact=finite(est.impact),
        total=finite(est.total),
        fees_bps=finite(est.fees_bps),
        spread_bps=finite(est.spread_bps),
        impact_bps=finite(est.impact_bps),
        total_bps=finite(est.total_bps),
    )


def _opt(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@router.post(
    "/execution/route",
    tags=["execution"],
    summary="Split a marketable order across cached books",
    responses=documented(),
)
def route(request: RouteRequest, quotes: Annotated[QuoteCache, Depends(deps.quote_cache)]) -> RouteResponse:
    venues = list(dict.fromkeys(request.venues))
    books: dict[str, tuple[list[float], list[float]]] = {}
    for venue in venues:
        book = quotes.get_book(venue, request.symbol)
        levels = () if book is None else (book.asks if request.side is Side.BUY else book.bids)
        if levels:
            books[venue] = ([float(lv.price) for lv in levels], [float(lv.quantity) for lv in levels])
    if not books:
        raise Unprocessable(f"no cached book for {request.symbol} on {', '.join(venues)}")
    fees = {v: request.fee_bps.get(v, request.default_fee_bps) for v in books}
    with quant_errors():
        decision = choose_venues(request.side.value, float(request.quantity), books, fees)
    rows = decision.allocations
    return RouteResponse(
        symbol=request.symbol,
        side=request.side,
        filled=finite(decision.filled),
        unfilled=finite(decision.unfilled),
        notional=finite(decision.notional),
        fees=finite(decision.fees),
        total=finite(decision.total),
        allocations=[
            RouteAllocation(
                venue=str(v),
                quantity=float(rows.loc[v, "quantity"]),
                average_price=_opt(rows.loc[v, "average_price"]),
                worst_price=_opt(rows.loc[v, "worst_price"]),
                notional=float(rows.loc[v, "notional"]),
                fees=float(rows.loc[v, "fees"]),
            )
            for v in rows.index
        ],
        missing_books=[v for v in venues if v not in books],
    )


@router.get(
    "/execution/venue-analysis",
    tags=["execution"],
    summary="Quote freshness, spread and depth per venue",
    responses=documented(),
)
def venue_analysis(
    symbol: SymbolQuery,
    venues: Annotated[
        str, Query(min_length=1, max_length=400, pattern=r"^[A-Za-z0-9_,-]+$", examples=["binance,kraken"])
    ],
    quotes: Annotated[QuoteCache, Depends(deps.quote_cache)],
    clock: Annotated[Clock, Depends(deps.clock)],
) -> VenueAnalysisResponse:
    name = path_symbol(symbol, "query.symbol")
    names = split_symbols(venues, "query.venues")
    now = clock.now()
    max_age = get_settings().quote_max_age("crypto" if "/" in name else "equity")
    rows: list[VenueQuality] = []
    for venue in names:
        quote = quotes.get_quote(venue, name)
        book = quotes.get_book(venue, name)
        spread = None if quote is None else float((quote.ask - quote.bid) / quote.mid * 10_000)
        rows.append(
            VenueQuality(
                venue=venue,
                has_quote=quote is not None,
                stale=quotes.is_stale(venue, name, now, max_age),
                age_seconds=None if quote is None else (now - quote.ts).total_seconds(),
                spread_bps=spread,
                bid_depth=0.0 if book is None else float(sum(lv.quantity for lv in book.bids)),
                ask_depth=0.0 if book is None else float(sum(lv.quantity for lv in book.asks)),
                levels=0 if book is None else len(book.bids) + len(book.asks),
            )
        )
    live = [r for r in rows if r.has_quote and not r.stale and r.spread_bps is not None]
    best = min(live, key=lambda r: r.spread_bps or 0.0).venue if live else None
    return VenueAnalysisResponse(symbol=name, as_of=now, venues=rows, best=best)
