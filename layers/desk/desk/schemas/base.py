"""Shared pieces of every message schema: the base model and the constrained field types.

* Every model is frozen and forbids unknown fields (``extra="forbid"``): a misspelt field in an event
  or a venue payload fails loudly instead of being dropped.
* Datetimes must be timezone-aware; they are converted to UTC, so every timestamp the desk emits is
  UTC (serialised as ``...Z``). Naive datetimes are rejected.
* Prices, quantities and money are ``Decimal`` parsed by :func:`desk.domain.as_decimal` (floats via
  ``repr``; NaN, ±inf and booleans rejected) and serialised to JSON as strings, so no precision is
  lost in transit. Analytics values (weights, probabilities, VaR ratios) are finite floats.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from desk.domain.instruments import as_decimal, to_venue_string

__all__ = [
    "Amount",
    "DeskModel",
    "FiniteFloat",
    "Identifier",
    "Money",
    "NonNegativeDecimal",
    "PositiveDecimal",
    "Probability",
    "Symbol",
    "UtcDatetime",
]


class DeskModel(BaseModel):
    """Base of every schema: immutable, no unknown fields, no NaN/inf floats."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, str_strip_whitespace=False)


def _to_utc(value: datetime) -> datetime:
    if value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware (UTC)")
    return value.astimezone(UTC)


def _signed(value: Any) -> Decimal:
    return as_decimal(value, "value", allow_negative=True)


def _non_negative(value: Any) -> Decimal:
    return as_decimal(value, "value")


def _positive(value: Any) -> Decimal:
    return as_decimal(value, "value", allow_zero=False)


# Canonical text (no exponent, no trailing zeros) keeps JSON stable and human-readable.
_decimal_json = PlainSerializer(to_venue_string, return_type=str, when_used="json")

UtcDatetime = Annotated[datetime, AfterValidator(_to_utc)]
Money = Annotated[Decimal, BeforeValidator(_signed), _decimal_json]
NonNegativeDecimal = Annotated[Decimal, BeforeValidator(_non_negative), _decimal_json]
PositiveDecimal = Annotated[Decimal, BeforeValidator(_positive), _decimal_json]
Amount = NonNegativeDecimal
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[!-~]+$")]
# Unified symbols: "BTC/USDT", "AAPL", "ETH/USDT:USDT" (ccxt swap notation).
Symbol = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/-]+$")]
