"""The configured universe: which series (venue, symbol, timeframe) the desk ingests and analyses.

``Settings.universe`` holds a JSON list; each item names a ``venue`` and a ``symbol`` and either one
``timeframe`` or a list of ``timeframes``, optionally an ``asset_class`` (``crypto`` trades 24x7,
``equity`` on weekdays, which decides what counts as a missing bar) and a backfill ``start``.
An empty setting means :data:`DEMO_UNIVERSE`, the series the local demo replays.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import Field, TypeAdapter, model_validator

from desk.schemas.base import DeskModel, Identifier, Symbol, UtcDatetime
from desk.schemas.market import Timeframe

__all__ = ["DEMO_UNIVERSE", "Series", "Universe", "UniverseEntry", "parse_universe"]


class Series(DeskModel):
    """One bar series: what one ingest job brings up to date."""

    venue: Identifier
    symbol: Symbol
    timeframe: Timeframe
    asset_class: Literal["crypto", "equity"] = "crypto"
    start: UtcDatetime | None = None

    @property
    def calendar(self) -> Literal["24x7", "weekdays"]:
        return "24x7" if self.asset_class == "crypto" else "weekdays"


class UniverseEntry(DeskModel):
    venue: Identifier
    symbol: Symbol
    timeframe: Timeframe | None = None
    timeframes: tuple[Timeframe, ...] = ()
    asset_class: Literal["crypto", "equity"] = "crypto"
    start: UtcDatetime | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        if (self.timeframe is None) == (not self.timeframes):
            raise ValueError(f"{self.venue} {self.symbol}: give exactly one of 'timeframe' or 'timeframes'")
        return self

    def series(self) -> list[Series]:
        frames = self.timeframes or (self.timeframe,)
        return [
            Series(venue=self.venue, symbol=self.symbol, timeframe=tf, asset_class=self.asset_class, start=self.start)
            for tf in frames
            if tf is not None
        ]


class Universe(DeskModel):
    entries: Annotated[tuple[UniverseEntry, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> Self:
        keys = [(s.venue, s.symbol, s.timeframe) for s in self.series()]
        if len(keys) != len(set(keys)):
            raise ValueError("the universe lists a (venue, symbol, timeframe) twice")
        return self

    def series(self, timeframe: str | None = None) -> list[Series]:
        """Every series in configuration order (only ``timeframe``'s when given)."""
        return [s for e in self.entries for s in e.series() if timeframe in (None, s.timeframe)]

    def symbols(self, timeframe: str | None = None) -> list[str]:
        """Distinct symbols, first-seen order (the correlation universe of a timeframe)."""
        return list(dict.fromkeys(s.symbol for s in self.series(timeframe)))

    def timeframes(self) -> list[str]:
        return list(dict.fromkeys(s.timeframe for s in self.series()))

    def venue_of(self, symbol: str, timeframe: str) -> str:
        for s in self.series(timeframe):
            if s.symbol == symbol:
                return s.venue
        raise KeyError(f"{symbol} {timeframe} is not in the universe")


_BACKFILL = datetime.fromisoformat("2024-01-01T00:00:00+00:00")

DEMO_UNIVERSE = Universe(
    entries=(
        UniverseEntry(venue="binance", symbol="BTC/USDT", timeframes=("1h", "1d"), start=_BACKFILL),
        UniverseEntry(venue="binance", symbol="ETH/USDT", timeframes=("1h", "1d"), start=_BACKFILL),
        UniverseEntry(venue="alpaca", symbol="SPY", timeframe="1d", asset_class="equity", start=_BACKFILL),
        UniverseEntry(venue="alpaca", symbol="AAPL", timeframe="1d", asset_class="equity", start=_BACKFILL),
    )
)

_ENTRIES = TypeAdapter(tuple[UniverseEntry, ...])


def parse_universe(raw: str) -> Universe:
    """The universe in ``raw`` (``Settings.universe``); blank means :data:`DEMO_UNIVERSE`.

    Raises ``pydantic.ValidationError`` (or ``ValueError`` for invalid JSON) so a bad setting fails
    the first invocation loudly rather than ingesting a partial universe.
    """
    if not raw.strip():
        return DEMO_UNIVERSE
    return Universe(entries=_ENTRIES.validate_python(json.loads(raw)))
