# mypy: disable-error-code="no-untyped-call"
"""Market data: the cached top of book and depth (Redis) and stored bars (PostgreSQL), paginated."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import Annotated

from aws_lambda_powertools.event_handler import Depends
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from desk.api import deps
from desk.api.errors import BadRequest, NotFound, documented
from desk.api.frames import path_symbol
from desk.api.models import BarsPage, ErrorDetail, OrderBookResponse, TickerResponse, Timestamp
from desk.ports import Clock, QuoteCache
from desk.settings import get_settings
from desk.store import PostgresStore
from desk.usecases.strategies import TIMEFRAME_STEPS

router = Router()

# No pattern on the path symbol: the route sees the raw segment (BTC%2FUSDT) and path_symbol checks it decoded.
SymbolPath = Annotated[
    str, Path(min_length=1, max_length=96, description="Unified symbol, `/` URL-encoded", examples=["BTC/USDT"])
]
# In a query the symbol is plain text (BTC/USDT); the pattern is the Symbol alphabet, a list adds commas and spaces.
SymbolQuery = Annotated[
    str,
    Query(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/-]+$", description="Unified symbol", examples=["BTC/USDT"]
    ),
]
SYMBOLS_PATTERN = r"^[A-Za-z0-9._:/, -]+$"
SYMBOLS_EXAMPLE = "BTC/USDT,ETH/USDT,LTC/USDT"
SymbolsQuery = Annotated[
    str,
    Query(
        min_length=1,
        max_length=1_000,
        pattern=SYMBOLS_PATTERN,
        description="Comma-separated unified symbols",
        examples=[SYMBOLS_EXAMPLE],
    ),
]
VenueQuery = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", examples=["binance"])]
TimeframeQuery = Annotated[str, Query(pattern=r"^(1m|5m|15m|30m|1h|4h|1d)$", examples=["1d"])]


def _max_age(symbol: str) -> timedelta:
    # Unified crypto symbols carry a quote currency after "/"; equities are bare tickers.
    return get_settings().quote_max_age("crypto" if "/" in symbol else "equity")


@router.get("/data/ticker/<symbol>", tags=["market"], summary="Latest cached top of book", responses=documented())
def ticker(
    symbol: SymbolPath,
    quotes: Annotated[QuoteCache, Depends(deps.quote_cache)],
    clock: Annotated[Clock, Depends(deps.clock)],
    venue: VenueQuery = "binance",
) -> TickerResponse:
    name = path_symbol(symbol)
    quote = quotes.get_quote(venue, name)
    if quote is None:
        raise NotFound(f"no quote cached for {venue} {name}")
    now = clock.now()
    mid = quote.mid
    return TickerResponse(
        venue=venue,
        symbol=name,
        ts=quote.ts,
        bid=quote.bid,
        ask=quote.ask,
        mid=mid,
        bid_size=quote.bid_size,
        ask_size=quote.ask_size,
        spread_bps=float((quote.ask - quote.bid) / mid * 10_000),
        age_seconds=(now - quote.ts).total_seconds(),
        stale=quotes.is_stale(venue, name, now, _max_age(name)),
    )


@router.get("/data/orderbook/<symbol>", tags=["market"], summary="Latest cached depth snapshot", responses=documented())
def orderbook(
    symbol: SymbolPath,
    quotes: Annotated[QuoteCache, Depends(deps.quote_cache)],
    clock: Annotated[Clock, Depends(deps.clock)],
    venue: VenueQuery = "binance",
    depth: Annotated[int, Query(ge=1, le=200, examples=[5])] = 20,
) -> OrderBookResponse:
    name = path_symbol(symbol)
    book = quotes.get_book(venue, name)
    if book is None:
        raise NotFound(f"no order book cached for {venue} {name}")
    age = clock.now() - book.ts
    return OrderBookResponse(
        venue=venue,
        symbol=name,
        ts=book.ts,
        sequence=book.sequence,
        bids=list(book.bids[:depth]),
        asks=list(book.asks[:depth]),
        age_seconds=age.total_seconds(),
        stale=age > _max_age(name),
    )


def _decode_cursor(cursor: str) -> datetime:
    try:
        value = datetime.fromisoformat(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadRequest("invalid cursor", [ErrorDetail(field="query.cursor", reason="not a cursor")]) from exc
    if value.tzinfo is None:
        raise BadRequest("invalid cursor", [ErrorDetail(field="query.cursor", reason="not a cursor")])
    return value.astimezone(UTC)


def _encode_cursor(ts: datetime) -> str:
    return base64.urlsafe_b64encode(ts.isoformat().encode()).decode()


@router.get(
    "/data/historical/<symbol>",
    tags=["market"],
    summary="Stored bars in [start, end), oldest first, a page at a time",
    responses=documented(),
)
def historical(
    symbol: SymbolPath,
    store: Annotated[PostgresStore, Depends(deps.store)],
    clock: Annotated[Clock, Depends(deps.clock)],
    venue: VenueQuery = "binance",
    timeframe: TimeframeQuery = "1d",
    start: Annotated[
        Timestamp | None,
        Query(description="Inclusive; default: `limit` bars before `end`", examples=["2019-06-01T00:00:00Z"]),
    ] = None,
    end: Annotated[
        Timestamp | None, Query(description="Exclusive; default: now", examples=["2019-09-01T00:00:00Z"])
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1_000, examples=[50])] = 200,
    cursor: Annotated[
        str | None,
        Query(
            max_length=200,
            description="`next_cursor` of the previous page",
            examples=["MjAxOS0wNi0zMFQwMDowMDowMCswMDowMA=="],  # after 2019-06-30T00:00:00+00:00
        ),
    ] = None,
) -> BarsPage:
    name = path_symbol(symbol)
    for label, value in (("start", start), ("end", end)):
        if value is not None and value.utcoffset() is None:
            raise BadRequest(f"{label} needs a timezone", [ErrorDetail(field=f"query.{label}", reason="naive")])
    step = TIMEFRAME_STEPS[timeframe]
    try:
        stop = (end or clock.now()).astimezone(UTC)
        first = (start or stop - step * limit).astimezone(UTC)
        if cursor is not None:
            first = max(first, _decode_cursor(cursor) + timedelta(microseconds=1))
    except OverflowError as exc:
        raise BadRequest("dates out of range", [ErrorDetail(field="query.start", reason="overflow")]) from exc
    if first >= stop:
        raise BadRequest("start must be before end", [ErrorDetail(field="query.start", reason="after end")])
    bars = list(store.load_bars(venue, name, timeframe, first, stop))
    page = bars[:limit]
    more = len(bars) > limit
    return BarsPage(
        venue=venue,
        symbol=name,
        timeframe=timeframe,
        bars=page,
        next_cursor=_encode_cursor(page[-1].ts) if more else None,
    )
