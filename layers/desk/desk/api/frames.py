"""What routes share: stored bars as frames, symbol parsing, and quant errors turned into 422s.

The quant layer raises ``ValueError`` for input it cannot work with (too few rows, a singular
covariance...). For the API that is the caller's data, not a fault, so :func:`quant_errors` turns it
into :class:`Unprocessable`; anything else stays a 500.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd
from pydantic import TypeAdapter, ValidationError

from desk.api.errors import BadRequest, NotFound, Unprocessable
from desk.api.models import ErrorDetail
from desk.ports import Store
from desk.schemas.base import Symbol
from desk.schemas.market import Bar
from desk.usecases.strategies import TIMEFRAME_STEPS

__all__ = ["bar_frame", "closes", "finite", "path_symbol", "quant_errors", "split_symbols"]

_SYMBOL: TypeAdapter[str] = TypeAdapter(Symbol)


def path_symbol(raw: str, where: str = "path.symbol") -> str:
    """A symbol from a path segment: ``BTC%2FUSDT`` (API Gateway passes the raw path) → ``BTC/USDT``."""
    try:
        return _SYMBOL.validate_python(unquote(raw))
    except ValidationError as exc:
        raise BadRequest("invalid symbol", [ErrorDetail(field=where, reason=str(exc.errors()[0]["msg"]))]) from exc


def split_symbols(raw: str, where: str = "query.symbols", minimum: int = 1) -> list[str]:
    """Comma-separated symbols, each valid, no repeats, at least ``minimum``."""
    symbols = [path_symbol(part.strip(), where) for part in raw.split(",") if part.strip()]
    if len(symbols) < minimum or len(set(symbols)) != len(symbols):
        raise BadRequest(f"need at least {minimum} distinct symbols", [ErrorDetail(field=where, reason="count")])
    return symbols


@contextmanager
def quant_errors() -> Iterator[None]:
    try:
        yield
    except (ValueError, ZeroDivisionError, FloatingPointError, np.linalg.LinAlgError) as exc:
        raise Unprocessable(f"cannot compute on this data: {exc}") from exc


def finite(value: Any, name: str = "value") -> float:
    number = float(value)
    if not math.isfinite(number):
        raise Unprocessable(f"{name} is not finite on this data")
    return number


def _window(store: Store, venue: str, symbol: str, timeframe: str, end: datetime, bars: int) -> list[Bar]:
    step = TIMEFRAME_STEPS[timeframe]
    # Calendar gaps (weekends for equities) need more time than bars x step: ask for twice that.
    loaded = store.load_bars(venue, symbol, timeframe, end - step * (2 * bars), end + step)
    return list(loaded)[-bars:]


def bar_frame(store: Store, venue: str, symbol: str, timeframe: str, end: datetime, bars: int) -> pd.DataFrame:
    """The last ``bars`` stored bars at or before ``end`` as OHLCV floats; 404 when none exist."""
    loaded = _window(store, venue, symbol, timeframe, end, bars)
    if not loaded:
        raise NotFound(f"no {timeframe} bars for {venue} {symbol}")
    return pd.DataFrame(
        {
            "high": [float(b.high) for b in loaded],
            "low": [float(b.low) for b in loaded],
            "close": [float(b.close) for b in loaded],
            "volume": [float(b.volume) for b in loaded],
        },
        index=pd.DatetimeIndex([b.ts for b in loaded], name="ts"),
    )


def closes(
    store: Store, venue: str, symbols: Sequence[str], timeframe: str, end: datetime, bars: int, minimum: int = 3
) -> pd.DataFrame:
    """Closes of ``symbols`` on the bars they all have (inner join); 422 with fewer than ``minimum``."""
    columns: dict[str, pd.Series] = {}
    for symbol in symbols:
        frame = bar_frame(store, venue, symbol, timeframe, end, bars)
        columns[symbol] = frame["close"]
    prices = pd.DataFrame(columns).dropna()
    if len(prices) < minimum:
        raise Unprocessable(f"only {len(prices)} common bars for {', '.join(symbols)} (need {minimum})")
    return prices


def returns_of(prices: pd.DataFrame) -> pd.DataFrame:
    return prices.pct_change().iloc[1:]
