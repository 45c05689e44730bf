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
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PositiveFloat
from pydantic_settings import BaseSettings, SettingsConfigDict


class VenueSpec(BaseModel):
    """One venue: its adapter, ``credentials_id`` (the Secrets Manager id of its API keys) and endpoint overrides."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["ccxt", "alpaca"]
    exchange_id: str = ""
    credentials_id: str = ""
    sandbox: bool = False
    paper: bool = True
    base_url: str | None = None
    data_url: str | None = None


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
