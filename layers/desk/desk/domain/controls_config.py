"""Pre-trade controls: the gate's vocabulary (reason codes, inputs, decision) and its configuration.

The gate itself is :func:`desk.domain.controls.check_order`. This module holds the data it reads
and returns, so the use case that assembles a :class:`GateContext` and the audit log that stores a
:class:`GateDecision` need not import the checks.

Everything here is pure: inputs arrive as values (``now`` included), and schema types are accepted
structurally (:class:`IntentLike`, :class:`QuoteLike`, :class:`CorrelationLike`), because the
domain may not import :mod:`desk.schemas`. ``OrderIntent``, ``Quote`` and ``CorrelationSnapshot``
satisfy those protocols as they are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

from desk.domain.errors import DeskError, InvalidOrder
from desk.domain.instruments import Instrument, as_decimal
from desk.domain.orders import Order, OrderType, Side, TimeInForce, require_aware

__all__ = [
    "AssetClass",
    "CorrelationLike",
    "GateConfig",
    "GateContext",
    "GateDecision",
    "IntentLike",
    "OrderActivity",
    "OrderRequest",
    "PreTradeRejected",
    "QuoteLike",
    "Reason",
    "ReasonCode",
    "RecentIntent",
]


class AssetClass(StrEnum):
    CRYPTO = "crypto"
    EQUITY = "equity"


class ReasonCode(StrEnum):
    """Why the gate refused an order. The value is the stable code for the audit log and ASL causes."""

    KILL_SWITCH = "kill_switch_latched"
    REDUCE_ONLY_INCREASES = "reduce_only_increases_risk"
    NOT_ALLOWED = "instrument_not_allowed"
    HALTED = "instrument_halted"
    UNKNOWN_INSTRUMENT = "instrument_unknown"
    INSTRUMENT_FILTER = "instrument_filter"
    NOTIONAL_CAP = "notional_above_cap"
    ADV_SHARE = "quantity_above_adv_share"
    ADV_UNKNOWN = "adv_unknown"
    PRICE_COLLAR = "price_outside_collar"
    QUOTE_MISSING = "quote_missing"
    QUOTE_STALE = "quote_stale"
    DUPLICATE = "duplicate_intent"
    MARK_MISSING = "mark_missing"
    GROSS_EXPOSURE = "gross_exposure_above_limit"
    SYMBOL_CONCENTRATION = "symbol_concentration_above_limit"
    CLUSTER_CONCENTRATION = "cluster_concentration_above_limit"
    OPEN_ORDERS_SYMBOL = "open_orders_per_symbol_above_limit"
    OPEN_ORDERS_TOTAL = "open_orders_total_above_limit"
    THROTTLE_SECOND = "message_rate_per_second_above_limit"
    THROTTLE_MINUTE = "message_rate_per_minute_above_limit"


@dataclass(frozen=True, slots=True)
class Reason:
    """One failed check: a stable ``code`` and a message for humans (with the numbers that failed)."""

    code: ReasonCode
    message: str


class IntentLike(Protocol):
    """What the gate reads from an order intent (``desk.schemas.OrderIntent`` satisfies it)."""

    @property
    def client_order_id(self) -> str: ...
    @property
    def venue(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def side(self) -> Side: ...
    @property
    def order_type(self) -> OrderType: ...
    @property
    def quantity(self) -> Decimal: ...
    @property
    def limit_price(self) -> Decimal | None: ...
    @property
    def time_in_force(self) -> TimeInForce: ...
    @property
    def reduce_only(self) -> bool: ...


class QuoteLike(Protocol):
    """Top of book (``desk.schemas.Quote`` satisfies it); ``ts`` is the venue's time of the quote."""

    @property
    def venue(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def ts(self) -> datetime: ...
    @property
    def bid(self) -> Decimal: ...
    @property
    def ask(self) -> Decimal: ...


class CorrelationLike(Protocol):
    """A correlation matrix over ``symbols`` (``desk.schemas.CorrelationSnapshot`` satisfies it)."""

    @property
    def symbols(self) -> Sequence[str]: ...
    @property
    def matrix(self) -> Sequence[Sequence[float]]: ...


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """The order the gate judges (and, adjusted, the one it lets through).

    ``strategy`` is carried here because the duplicate check keys on it and ``OrderIntent`` has no
    strategy field; build one with :meth:`from_intent`.

    ``largest_child`` is set when the request is a parent order that will be worked as child orders
    (an execution plan's slices): the quantity of its largest child. The notional cap is a cap on each
    order the venue receives, so it is checked on that; every other control judges the parent's
    whole ``quantity`` (exposure, concentration and the volume share see everything the plan will do).
    """

    client_order_id: str
    strategy: str
    venue: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    limit_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    largest_child: Decimal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "order_type", OrderType(self.order_type))
        object.__setattr__(self, "time_in_force", TimeInForce(self.time_in_force))
        object.__setattr__(self, "quantity", as_decimal(self.quantity, "quantity", allow_zero=False))
        if (self.order_type is OrderType.LIMIT) != (self.limit_price is not None):
            raise ValueError("a limit order needs limit_price and a market order must not have one")
        if self.limit_price is not None:
            object.__setattr__(self, "limit_price", as_decimal(self.limit_price, "limit_price", allow_zero=False))
        if self.largest_child is not None:
            child = as_decimal(self.largest_child, "largest_child", allow_zero=False)
            if child > self.quantity:
                raise InvalidOrder("largest_child", f"{child} exceeds the parent quantity {self.quantity}")
            object.__setattr__(self, "largest_child", child)

    @classmethod
    def from_intent(cls, intent: IntentLike, *, strategy: str) -> OrderRequest:
        return cls(
            client_order_id=intent.client_order_id,
            strategy=strategy,
            venue=intent.venue,
            symbol=intent.symbol,
            side=intent.side,
            order_type=intent.order_type,
            quantity=intent.quantity,
            limit_price=intent.limit_price,
            time_in_force=intent.time_in_force,
            reduce_only=intent.reduce_only,
        )


@dataclass(frozen=True, slots=True)
class RecentIntent:
    """An intent the gate saw recently (for the duplicate check); ``at`` is when it was checked."""

    client_order_id: str
    strategy: str
    symbol: str
    side: Side
    quantity: Decimal
    at: datetime


@dataclass(frozen=True, slots=True)
class OrderActivity:
    """An order the desk sent (``created_at``) and, if it asked to cancel it, when (``cancel_requested_at``).

    The store's answer from which the gate's recent intents and order-message counts are built.
    """

    client_order_id: str
    strategy: str
    symbol: str
    side: Side
    quantity: Decimal
    created_at: datetime
    cancel_requested_at: datetime | None = None


def _frozen(mapping: Mapping[str, Decimal] | None = None) -> Mapping[str, Decimal]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class GateContext:
    """Everything the gate needs to know about the world at ``now``; assembled by the use case.

    * ``positions``: signed quantity per symbol (long > 0) for the whole book; ``marks``: a price per
      symbol to value it (the order's own symbol is valued at the quote's mid when there is one).
    * ``open_orders``: working orders of the book (terminal ones are ignored).
    * ``recent_intents``: intents checked in the last seconds; ``messages_last_second`` /
      ``messages_last_minute``: order messages (new, cancel, replace) the desk sent in those windows.
    * ``average_daily_volume``: in base units for the order's symbol (``None``: unknown, which fails).
    * ``instrument``: the venue's instrument for the order's symbol (``None``: unknown, which fails).
    """

    now: datetime
    instrument: Instrument | None
    quote: QuoteLike | None
    equity: Decimal
    average_daily_volume: Decimal | None = None
    positions: Mapping[str, Decimal] = field(default_factory=_frozen)
    marks: Mapping[str, Decimal] = field(default_factory=_frozen)
    open_orders: Sequence[Order] = ()
    recent_intents: Sequence[RecentIntent] = ()
    messages_last_second: int = 0
    messages_last_minute: int = 0
    kill_switch_latched: bool = False
    halted_symbols: frozenset[str] = frozenset()
    correlation: CorrelationLike | None = None

    def __post_init__(self) -> None:
        require_aware(self.now, "now")
        object.__setattr__(self, "equity", as_decimal(self.equity, "equity", allow_negative=True))
        if self.average_daily_volume is not None:
            object.__setattr__(self, "average_daily_volume", as_decimal(self.average_daily_volume, "adv"))
        if self.messages_last_second < 0 or self.messages_last_minute < 0:
            raise ValueError("message counts must not be negative")


_DEFAULT_MAX_QUOTE_AGE = MappingProxyType(
    {AssetClass.CRYPTO: timedelta(seconds=2), AssetClass.EQUITY: timedelta(seconds=5)}
)
_DEFAULT_VENUE_CLASSES = MappingProxyType(
    {
        "binance": AssetClass.CRYPTO,
        "coinbase": AssetClass.CRYPTO,
        "kraken": AssetClass.CRYPTO,
        "alpaca": AssetClass.EQUITY,
    }
)


@dataclass(frozen=True, slots=True)
class GateConfig:
    """The gate's limits. Fractions are of equity (``Decimal("0.02")`` = 2 %); money is in the quote currency.

    A limit is breached when the value is strictly above it (a value exactly at a limit passes), as in
    ``quant.limits.Limit``. ``allowed_symbols`` has no default: an unconfigured desk trades nothing.
    """

    allowed_symbols: frozenset[str]
    max_order_equity_fraction: Decimal = Decimal("0.02")
    default_symbol_notional_cap: Decimal = Decimal(250_000)
    symbol_notional_caps: Mapping[str, Decimal] = field(default_factory=_frozen)
    max_adv_fraction: Decimal = Decimal("0.01")
    # A symbol is liquid when its average daily volume is worth at least this much at the mid.
    liquid_adv_notional: Decimal = Decimal(50_000_000)
    collar_liquid: Decimal = Decimal("0.05")
    collar_illiquid: Decimal = Decimal("0.10")
    max_quote_age: Mapping[AssetClass, timedelta] = field(default_factory=lambda: _DEFAULT_MAX_QUOTE_AGE)
    # A quote stamped further ahead of the desk's clock than this is not trusted (clock skew, or a quote
    # that is not from this market): a future time would otherwise pass every staleness check.
    max_clock_skew: timedelta = timedelta(seconds=1)
    venue_asset_classes: Mapping[str, AssetClass] = field(default_factory=lambda: _DEFAULT_VENUE_CLASSES)
    # Unknown venues (paper, new adapters) get the strictest staleness rule.
    default_asset_class: AssetClass = AssetClass.CRYPTO
    duplicate_window: timedelta = timedelta(seconds=2)
    max_gross_exposure: Decimal = Decimal("1.5")
    max_symbol_concentration: Decimal = Decimal("0.25")
    max_cluster_concentration: Decimal = Decimal("0.40")
    cluster_correlation_threshold: float = 0.7
    # The correlation snapshot clusters are read from: the newest of this timeframe and method.
    cluster_timeframe: str = "1d"
    cluster_method: str = "ledoit_wolf"
    max_open_orders_per_symbol: int = 5
    max_open_orders_total: int = 50
    max_messages_per_second: int = 10
    max_messages_per_minute: int = 300

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_symbols", frozenset(self.allowed_symbols))
        for name in (
            "max_order_equity_fraction",
            "default_symbol_notional_cap",
            "max_adv_fraction",
            "liquid_adv_notional",
            "collar_liquid",
            "collar_illiquid",
            "max_gross_exposure",
            "max_symbol_concentration",
            "max_cluster_concentration",
        ):
            object.__setattr__(self, name, as_decimal(getattr(self, name), name, allow_zero=False))
        caps = {
            s: as_decimal(v, f"symbol_notional_caps[{s}]", allow_zero=False)
            for s, v in self.symbol_notional_caps.items()
        }
        object.__setattr__(self, "symbol_notional_caps", MappingProxyType(caps))
        if not (self.collar_liquid < 1 and self.collar_illiquid < 1):
            raise ValueError("collars must be below 100 %")
        if not -1.0 <= self.cluster_correlation_threshold <= 1.0:
            raise ValueError("cluster_correlation_threshold must be in [-1, 1]")
        for name in ("max_open_orders_per_symbol", "max_open_orders_total", "max_messages_per_second"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_messages_per_minute < 1 or self.duplicate_window < timedelta(0):
            raise ValueError("max_messages_per_minute must be >= 1 and duplicate_window >= 0")
        missing = set(AssetClass) - set(self.max_quote_age)
        if missing:
            raise ValueError(f"max_quote_age has no entry for {sorted(missing)}")

    def asset_class(self, venue: str) -> AssetClass:
        """The asset class of everything traded on ``venue`` (staleness limits depend on it)."""
        return self.venue_asset_classes.get(venue, self.default_asset_class)

    def symbol_notional_cap(self, symbol: str) -> Decimal:
        return self.symbol_notional_caps.get(symbol, self.default_symbol_notional_cap)


class PreTradeRejected(DeskError):
    """The gate refused an order (permanent). The class name is the ASL ``Catch`` error name."""

    def __init__(self, client_order_id: str, reasons: Sequence[Reason]) -> None:
        self.client_order_id = client_order_id
        self.reasons = tuple(reasons)
        super().__init__(f"order {client_order_id} rejected: " + "; ".join(f"{r.code}: {r.message}" for r in reasons))


@dataclass(frozen=True, slots=True)
class GateDecision:
    """The gate's answer. ``order`` is what may be sent (a market order comes back as a collared limit);
    ``adjustments`` lists the changed fields, e.g. for ``intent.model_copy(update=...)``."""

    accepted: bool
    reasons: tuple[Reason, ...]
    order: OrderRequest
    adjustments: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    risk_reducing: bool = False

    @property
    def codes(self) -> tuple[ReasonCode, ...]:
        return tuple(r.code for r in self.reasons)

    def error_cause(self) -> str:
        """JSON for a Step Functions ``Cause`` and the audit log (stable keys, codes as values)."""
        body = {
            "client_order_id": self.order.client_order_id,
            "accepted": self.accepted,
            "reasons": [{"code": r.code.value, "message": r.message} for r in self.reasons],
        }
        return json.dumps(body, sort_keys=True)

    def raise_if_rejected(self) -> OrderRequest:
        """The order to send, or :class:`PreTradeRejected` with every reason."""
        if not self.accepted:
            raise PreTradeRejected(self.order.client_order_id, self.reasons)
        return self.order
