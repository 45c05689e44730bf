"""Configuration of the Alpaca adapter: keys, paper or live, endpoint overrides, timeouts, data feed."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["DATA_URL", "LIVE_TRADING_URL", "PAPER_TRADING_URL", "AlpacaConfig"]

# The same hosts as alpaca-py's ``BaseURL`` enum, repeated so reading a config never imports alpaca-py.
PAPER_TRADING_URL = "https://paper-api.alpaca.markets"
LIVE_TRADING_URL = "https://api.alpaca.markets"
DATA_URL = "https://data.alpaca.markets"


class AlpacaConfig(BaseModel):
    """Everything the adapter needs; built once from settings (keys come from Secrets Manager).

    ``trading_url`` / ``data_url`` override the endpoints (alpaca-py's ``url_override``): tests point
    them at the fake on 127.0.0.1. ``timeout_seconds`` bounds every HTTP request, which alpaca-py
    itself never does. ``feed`` is the market-data feed (``iex`` on free plans, ``sip`` with a
    subscription).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr
    secret_key: SecretStr
    paper: bool = True
    trading_url: str | None = None
    data_url: str | None = None
    feed: Literal["iex", "sip", "delayed_sip", "otc", "boats", "overnight"] = "iex"
    timeout_seconds: float = Field(default=10.0, gt=0)
    venue: str = "alpaca"
    # Alpaca accepts fractional share quantities with up to 9 decimal places.
    fractional_decimals: int = Field(default=9, ge=0, le=9)
    # Alpaca's documented minimum for a fractional (notional-sized) equity order is $1.
    fractional_min_notional: str = "1"
    # A warm container re-reads the asset list this often, so a halt (tradable=false) is seen.
    markets_ttl_seconds: float = Field(default=900.0, gt=0)

    @property
    def trading_base_url(self) -> str:
        if self.trading_url:
            return self.trading_url.rstrip("/")
        return PAPER_TRADING_URL if self.paper else LIVE_TRADING_URL

    @property
    def data_base_url(self) -> str:
        return (self.data_url or DATA_URL).rstrip("/")
