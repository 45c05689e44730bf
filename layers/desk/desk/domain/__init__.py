"""The desk's pure domain: instruments and venue precision, the order lifecycle, client order ids, positions, errors.

Pure means standard library (and pydantic, where a model helps) only: no I/O, no AWS, database,
cache or venue client, and no clock reads. Time always arrives as a parameter.
"""

from __future__ import annotations

from desk.domain.errors import (
    DeskError,
    DuplicateFillConflict,
    InvalidClientOrderId,
    InvalidFill,
    InvalidNumber,
    InvalidOrder,
    InvalidTransition,
    Overfill,
    PrecisionError,
)
from desk.domain.ids import (
    ALPACA_CLIENT_IDS,
    BINANCE_CLIENT_IDS,
    PORTABLE_CLIENT_IDS,
    ClientIdRules,
    client_order_id,
    parse_client_order_id,
    plan_id_from,
)
from desk.domain.instruments import (
    Instrument,
    PrecisionMode,
    Rounding,
    SizedOrder,
    as_decimal,
    decimal_sum,
    round_to_precision,
    to_venue_string,
)
from desk.domain.orders import (
    Fill,
    Liquidity,
    Order,
    OrderState,
    OrderType,
    Side,
    TimeInForce,
)
from desk.domain.positions import Position, fees_by_currency, position_from_fills

__all__ = [
    "ALPACA_CLIENT_IDS",
    "BINANCE_CLIENT_IDS",
    "PORTABLE_CLIENT_IDS",
    "ClientIdRules",
    "DeskError",
    "DuplicateFillConflict",
    "Fill",
    "Instrument",
    "InvalidClientOrderId",
    "InvalidFill",
    "InvalidNumber",
    "InvalidOrder",
    "InvalidTransition",
    "Liquidity",
    "Order",
    "OrderState",
    "OrderType",
    "Overfill",
    "Position",
    "PrecisionError",
    "PrecisionMode",
    "Rounding",
    "Side",
    "SizedOrder",
    "TimeInForce",
    "as_decimal",
    "client_order_id",
    "decimal_sum",
    "fees_by_currency",
    "parse_client_order_id",
    "plan_id_from",
    "position_from_fills",
    "round_to_precision",
    "to_venue_string",
]
