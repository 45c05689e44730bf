"""Runtime settings, read once from the environment into one validated model.

Every function, the streamer and the CLI read configuration through :func:`get_settings`; nothing
else reads ``os.environ``. Names are ``DESK_<FIELD>`` (``DESK_DATABASE_URL``...), except the
connection URLs, which also accept the conventional ``DATABASE_URL`` and ``REDIS_URL``. Secrets
(venue API keys) are never settings: only the Secrets Manager names are.
"""

from __future__ import annotations

import json
from datetime import timedelta
from functools import cache
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PositiveFloat, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class VenueSpec(BaseModel):
    """One venue: its adapter, ``credentials_id`` (the Secrets Manager id of its API keys) and endpoint overrides.

    ``rate_limit`` is the venue's own request budget as a token bucket ``(capacity, refill per
    second)`` in the venue's request-weight units, shared by every caller of the account through
    Redis; ``request_costs`` is the weight of each adapter operation (default 1). A venue without
    one uses the settings' default bucket (``DESK_RATE_LIMIT_CAPACITY`` / ``_REFILL``). A ccxt venue
    whose exchange has published limits (:data:`EXCHANGE_LIMITS`) gets them unless it sets its own.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["ccxt", "alpaca"]
    exchange_id: str = ""
    credentials_id: str = ""
    sandbox: bool = False
    paper: bool = True
    base_url: str | None = None
    data_url: str | None = None
    rate_limit: tuple[PositiveFloat, PositiveFloat] | None = None
    request_costs: dict[str, PositiveFloat] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _exchange_limits(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kind") == "ccxt" and data.get("rate_limit") is None:
            published = EXCHANGE_LIMITS.get(str(data.get("exchange_id", "")))
            if published is not None:
                data = {
                    **data,
                    "rate_limit": published[0],
                    "request_costs": {**published[1], **data.get("request_costs", {})},
                }
        return data


# Binance spot: REQUEST_WEIGHT is 6,000 per rolling minute per IP. Refilled at 80/s with a 1,200 burst, no
# minute can spend more than 1,200 + 60 x 80 = 6,000. Weights of the endpoints behind each operation, as
# Binance publishes them (open orders without a symbol: 80; with one: 6).
BINANCE_RATE_LIMIT = (1_200.0, 80.0)
BINANCE_REQUEST_COSTS = {
    "load_markets": 20.0, "fetch_ticker": 2.0, "fetch_order_book": 5.0, "fetch_ohlcv": 2.0,
    "create_order": 1.0, "cancel_order": 1.0, "fetch_order": 4.0, "fetch_open_orders": 80.0,
    "fetch_fills": 20.0, "fetch_balances": 20.0,
}  # fmt: skip
# Coinbase Advanced Trade: 30 private requests per second per key; kept a little under it.
COINBASE_RATE_LIMIT = (30.0, 25.0)
EXCHANGE_LIMITS: dict[str, tuple[tuple[float, float], dict[str, float]]] = {
    "binance": (BINANCE_RATE_LIMIT, BINANCE_REQUEST_COSTS),
    "coinbase": (COINBASE_RATE_LIMIT, {}),
}


DEFAULT_VENUES: dict[str, VenueSpec] = {
    "binance": VenueSpec(kind="ccxt", exchange_id="binance", credentials_id="venues/binance"),
    "coinbase": VenueSpec(kind="ccxt", exchange_id="coinbase", credentials_id="venues/coinbase"),
    "alpaca": VenueSpec(kind="alpaca", credentials_id="venues/alpaca", paper=True),
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DESK_", extra="ignore", frozen=True)

    environment: Literal["local", "dev", "staging", "prod"] = "local"
    service: str = "lambda-desk"
    region: str = "us-east-1"
    database_url: str = Field(
        default="postgresql://127.0.0.1:5432/test",
        validation_alias=AliasChoices("DESK_DATABASE_URL", "DATABASE_URL"),
    )
    database_statement_timeout_ms: int = Field(default=10_000, gt=0)
    database_iam_auth: bool = Field(
        default=False, description="sign an RDS IAM auth token for each new connection (RDS Proxy in AWS)"
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0", validation_alias=AliasChoices("DESK_REDIS_URL", "REDIS_URL")
    )
    event_bus_name: str = "desk-events"
    event_source: str = "lambda-desk"
    alerts_topic_arn: str = ""
    idempotency_table: str = "idempotency"
    order_state_machine_arn: str = ""
    ingest_queue_url: str = ""
    universe: str = Field(default="", description="JSON list of {venue, symbol, timeframe}; empty = the demo universe")
    quote_max_age_crypto_s: PositiveFloat = 2.0
    quote_max_age_equity_s: PositiveFloat = 5.0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    quote_ttl_s: PositiveFloat = 900.0
    rate_limit_capacity: PositiveFloat = 20.0
    rate_limit_refill: PositiveFloat = 10.0
    venues: str = Field(default="", description="JSON object: venue name -> VenueSpec; empty = DEFAULT_VENUES")

    def venue_specs(self) -> dict[str, VenueSpec]:
        """The venue table: which adapter serves each venue name and where its keys live."""
        if not self.venues:
            return dict(DEFAULT_VENUES)
        raw = json.loads(self.venues)
        return {name: VenueSpec.model_validate(spec) for name, spec in raw.items()}

    def quote_max_age(self, asset_class: Literal["crypto", "equity"]) -> timedelta:
        seconds = self.quote_max_age_crypto_s if asset_class == "crypto" else self.quote_max_age_equity_s
        return timedelta(seconds=seconds)


@cache
def get_settings() -> Settings:
    """The process's settings (cached: a Lambda container reads its environment once)."""
    return Settings()
