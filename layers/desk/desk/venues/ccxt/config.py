"""Configuration of a ccxt venue: which exchange, which account, where, and how fast."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EXCHANGE_OPTIONS", "CcxtVenueConfig"]

# ccxt options the desk needs per exchange. Binance: spot only (the desk trades spot there), and no
# margin/currency/futures calls while loading markets, which would need extra permissions and weight.
EXCHANGE_OPTIONS: Mapping[str, Mapping[str, Any]] = {
    "binance": {
        "fetchMarkets": {"types": ["spot"]},
        "fetchCurrencies": False,
        "fetchMargins": False,
        "warnOnFetchOpenOrdersWithoutSymbol": False,
        "adjustForTimeDifference": False,
    },
}


@dataclass(frozen=True, slots=True)
class CcxtVenueConfig:
    """One ccxt exchange account.

    ``api_key`` / ``secret`` are passed in (from Secrets Manager in AWS), never read here.
    ``base_url`` replaces the scheme and host of every REST URL the exchange knows (tests point it at
    a fake on 127.0.0.1). ``rate_limit_bucket`` names the shared token bucket (one per API key, so
    every Lambda instance trading the account shares one limit); it defaults to ``venue``.
    ``symbols`` is the traded universe, walked by calls that Binance answers per symbol only
    (fills, positions) when no symbol is given.
    """

    exchange_id: str
    api_key: str | None = None
    secret: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    sandbox: bool = False
    base_url: str | None = None
    rate_limit_bucket: str | None = None
    venue: str | None = None
    symbols: tuple[str, ...] = ()
    timeout_ms: int = 10_000
    max_rate_wait_seconds: float = 5.0
    markets_ttl_seconds: float = 900.0  # a warm container re-reads markets this often (halts, new filters)
    request_costs: Mapping[str, float] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.exchange_id:
            raise ValueError("exchange_id must not be empty")
        if self.timeout_ms <= 0 or self.max_rate_wait_seconds < 0:
            raise ValueError("timeout_ms must be positive and max_rate_wait_seconds non-negative")

    @property
    def venue_id(self) -> str:
        return self.venue or self.exchange_id

    @property
    def bucket(self) -> str:
        return self.rate_limit_bucket or self.venue_id

    def cost(self, operation: str) -> float:
        """Tokens one call of ``operation`` takes from the bucket (venue request weight); default 1."""
        return self.request_costs.get(operation, 1.0)

    def ccxt_options(self) -> dict[str, Any]:
        return {**EXCHANGE_OPTIONS.get(self.exchange_id, {}), **self.options}
