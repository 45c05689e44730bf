"""The streamer's configuration: venues, symbols, per-channel staleness thresholds, pacing, ports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator

from desk.settings import get_settings

__all__ = ["CHANNELS", "StreamerConfig", "Thresholds", "VenueConfig", "load_config"]

CHANNELS = ("quote", "book", "trades")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(_Model):
    """Seconds without a message before a channel counts as stale (trades are burstier than quotes)."""

    quote: PositiveFloat = 2.0
    book: PositiveFloat = 2.0
    trades: PositiveFloat = 30.0

    def of(self, channel: str) -> float:
        return float(getattr(self, channel))


class VenueConfig(_Model):
    """One venue connection shared by ``symbols``; ``ws_url`` / ``rest_url`` override the venue's URLs."""

    venue: str
    kind: Literal["ccxt", "alpaca"] = "ccxt"
    exchange_id: str = "binance"
    market: Literal["spot", "linear"] = "spot"
    symbols: tuple[str, ...]
    channels: tuple[Literal["quote", "book", "trades", "bars"], ...] = ("quote", "book", "trades")
    ws_url: str | None = None
    rest_url: str | None = None
    api_key: str = ""
    secret: str = Field(default="", repr=False)
    book_depth: int = Field(default=20, ge=1, le=1000)
    thresholds: Thresholds = Thresholds()
    rate_limit_bucket: str | None = None
    subscribe_cost: PositiveFloat = 1.0
    data_feed: Literal["iex", "sip"] = "iex"  # alpaca only: SIP needs a paid subscription

    @model_validator(mode="after")
    def _channels_exist(self) -> Self:
        # Alpaca publishes no equity depth: a book channel would never flow and stay stale for ever.
        if self.kind == "alpaca" and "book" in self.channels:
            raise ValueError("alpaca venues have no book channel: use quote, trades and bars")
        return self

    @property
    def bucket(self) -> str:
        return self.rate_limit_bucket or f"{self.venue}:ws"


class StreamerConfig(_Model):
    venues: tuple[VenueConfig, ...]
    redis_url: str = "redis://127.0.0.1:6379/0"
    health_host: str = "0.0.0.0"  # noqa: S104  # the container's health check reaches it from outside
    health_port: int = Field(default=8080, ge=0, le=65535)
    metrics_interval_s: PositiveFloat = 60.0
    backoff_base_s: PositiveFloat = 0.5
    backoff_cap_s: PositiveFloat = 30.0
    drain_timeout_s: PositiveFloat = 20.0  # below ECS's default 30 s stop timeout
    cancel_all_after_s: PositiveFloat = 30.0
    subscribe_capacity: PositiveFloat = 10.0
    subscribe_refill_per_s: PositiveFloat = 5.0
    write_interval_s: PositiveFloat = 0.05


def load_config(path: str | None, **overrides: object) -> StreamerConfig:
    """From a JSON file (``--config``), else one Binance spot venue on the settings' universe."""
    if path:
        raw = json.loads(Path(path).read_text())
    else:
        settings = get_settings()
        universe = json.loads(settings.universe) if settings.universe else [{"venue": "binance", "symbol": "BTC/USDT"}]
        symbols = tuple(sorted({u["symbol"] for u in universe if u.get("venue", "binance") == "binance"}))
        raw = {"venues": [{"venue": "binance", "symbols": symbols}], "redis_url": settings.redis_url}
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return StreamerConfig.model_validate(raw)
