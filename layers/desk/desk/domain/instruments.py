"""Instruments, venue precision and order filters, in ``Decimal``.

Conventions
-----------
* Money and quantities are :class:`decimal.Decimal` at every venue boundary. Floats are converted
  through ``repr`` (the shortest string that round-trips), never ``Decimal(float)``, which would carry
  the binary expansion (``Decimal(0.1)`` is ``0.1000000000000000055511151231257827...``).
* Rounding follows ccxt's ``amount_to_precision`` / ``price_to_precision``: amounts TRUNCATE (toward
  zero, so an order never exceeds what was asked for), prices ROUND half-up to the nearest step.
  Precision is counted in one of three modes: DECIMAL_PLACES (``precision`` = number of decimals,
  may be negative), SIGNIFICANT_DIGITS (``precision`` = digits kept) and TICK_SIZE (``precision`` =
  the step itself). Results equal ``ccxt.base.decimal_to_precision`` with ``NO_PADDING``, including
  its tie rule in SIGNIFICANT_DIGITS mode when the integer part has more digits than the precision
  (there ccxt picks the lower neighbour on an exact tie).
* A value that rounds to zero raises :class:`PrecisionError`, as ccxt raises ``InvalidOrder``.
* All arithmetic runs in a private decimal context, so a caller changing the thread's context (ccxt
  does: it sets ``ROUND_HALF_UP`` and traps ``Underflow`` globally) cannot change results here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Context, Decimal, DivisionByZero, InvalidOperation, Overflow
from enum import StrEnum
from typing import Any

from desk.domain.errors import InvalidNumber, InvalidOrder, PrecisionError

__all__ = [
    "DECIMAL_CONTEXT",
    "DecimalLike",
    "Instrument",
    "PrecisionMode",
    "Rounding",
    "SizedOrder",
    "as_decimal",
    "decimal_sum",
    "round_to_precision",
    "to_venue_string",
]

DecimalLike = Decimal | str | int | float

# 50 digits: wide enough that adding or multiplying venue-sized numbers is exact; traps make any
# invalid operation loud instead of quietly producing NaN.
DECIMAL_CONTEXT = Context(prec=50, rounding=ROUND_HALF_UP, traps=[InvalidOperation, DivisionByZero, Overflow])


class PrecisionMode(StrEnum):
    """How a precision number is read (ccxt ``precisionMode``)."""

    DECIMAL_PLACES = "decimal_places"
    SIGNIFICANT_DIGITS = "significant_digits"
    TICK_SIZE = "tick_size"


class Rounding(StrEnum):
    """TRUNCATE = toward zero (amounts); ROUND = to nearest, ties away from zero (prices)."""

    TRUNCATE = "truncate"
    ROUND = "round"


def as_decimal(
    value: object, field: str = "value", *, allow_negative: bool = False, allow_zero: bool = True
) -> Decimal:
    """Convert ``value`` to a finite ``Decimal`` or raise :class:`InvalidNumber`.

    Accepts ``Decimal``, ``int``, ``str`` and ``float`` (through ``repr``). Rejects ``bool`` (a
    ``True`` quantity is always a bug), NaN, ±inf and, unless allowed, negatives and zero. ``-0`` is
    normalised to ``0``.
    """
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str | float):
        raise InvalidNumber(field, value, f"expected a decimal, int, str or float, not {type(value).__name__}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidNumber(field, value, "must be finite")
        value = repr(value)
    try:
        dec = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise InvalidNumber(field, value, "not a number") from None
    if not dec.is_finite():
        raise InvalidNumber(field, value, "must be finite")
    if dec.is_zero():
        if not allow_zero:
            raise InvalidNumber(field, value, "must be positive")
        return abs(dec)
    if dec < 0 and not allow_negative:
        raise InvalidNumber(field, value, "must not be negative")
    return dec


def decimal_sum(values: Iterable[Decimal]) -> Decimal:
    """Exact sum in the desk's context (``sum()`` would round at the thread context's 28 digits)."""
    total = Decimal(0)
    for value in values:
        total = DECIMAL_CONTEXT.add(total, value)
    return total


def to_venue_string(value: Decimal) -> str:
    """Fixed-point text without exponent or trailing zeros (``1E+3`` → ``"1000"``, ``0.50`` → ``"0.5"``)."""
    text = format(value.normalize(DECIMAL_CONTEXT), "f")
    return "0" if text in ("-0", "") else text


def _quantize(value: Decimal, exponent: int, rounding: Rounding) -> Decimal:
    mode = ROUND_DOWN if rounding is Rounding.TRUNCATE else ROUND_HALF_UP
    return value.quantize(Decimal(1).scaleb(exponent), rounding=mode, context=DECIMAL_CONTEXT)


def round_to_precision(value: DecimalLike, precision: DecimalLike, mode: PrecisionMode, rounding: Rounding) -> Decimal:
    """Round a non-negative ``value`` at a venue ``precision`` (ccxt ``decimal_to_precision`` semantics).

    Parameters
    ----------
    value : decimal-like, >= 0
    precision : decimal-like
        Decimals (DECIMAL_PLACES, an integer, may be negative: ``-2`` rounds to hundreds), digits kept
        (SIGNIFICANT_DIGITS, integer >= 1) or the step (TICK_SIZE, > 0).
    mode, rounding : see :class:`PrecisionMode` and :class:`Rounding`.

    Returns
    -------
    Decimal
        The rounded value; may be zero (the caller decides whether zero is an error).
    """
    dec = as_decimal(value, "value")
    prec = as_decimal(precision, "precision", allow_negative=mode is PrecisionMode.DECIMAL_PLACES)
    try:
        return _round(dec, prec, mode, rounding)
    except InvalidOperation:
        # Only reachable with more than 50 significant digits: no venue quotes such numbers.
        raise InvalidNumber("value", value, f"too many digits to round at precision {precision}") from None


def _round(dec: Decimal, prec: Decimal, mode: PrecisionMode, rounding: Rounding) -> Decimal:
    if mode is PrecisionMode.TICK_SIZE:
        if prec.is_zero():
            raise InvalidNumber("precision", prec, "a tick size must be positive")
        missing = DECIMAL_CONTEXT.remainder(dec, prec)
        if rounding is Rounding.ROUND and DECIMAL_CONTEXT.multiply(missing, 2) >= prec:
            snapped = DECIMAL_CONTEXT.add(DECIMAL_CONTEXT.subtract(dec, missing), prec)
        else:
            snapped = DECIMAL_CONTEXT.subtract(dec, missing)
        # Quantize to the tick's own exponent so the text has the tick's number of decimals at most.
        tick_exponent = int(prec.normalize(DECIMAL_CONTEXT).as_tuple().exponent)
        return snapped.quantize(Decimal(1).scaleb(tick_exponent), context=DECIMAL_CONTEXT)
    if prec != prec.to_integral_value():
        raise InvalidNumber("precision", prec, f"{mode.value} precision must be an integer")
    digits = int(prec)
    if mode is PrecisionMode.DECIMAL_PLACES:
        return _quantize(dec, -digits, rounding)
    if digits < 1:
        raise InvalidNumber("precision", prec, "significant digits must be >= 1")
    if dec.is_zero():
        return dec
    exponent = dec.adjusted() - digits + 1
    if rounding is Rounding.TRUNCATE or exponent <= 0:
        return _quantize(dec, exponent, rounding)
    # ccxt compares the two neighbours here and keeps the lower one on a tie; match it exactly.
    below = _quantize(dec, exponent, Rounding.TRUNCATE)
    above = DECIMAL_CONTEXT.add(below, Decimal(1).scaleb(exponent))
    ctx = DECIMAL_CONTEXT
    return below if ctx.subtract(dec, below) <= ctx.subtract(above, dec) else above


@dataclass(frozen=True, slots=True)
class SizedOrder:
    """An order size that passed the venue's filters: ``quantity`` and ``price`` are on the grid."""

    quantity: Decimal
    price: Decimal | None
    notional: Decimal | None


def _optional(value: object, field: str) -> Decimal | None:
    return None if value is None else as_decimal(value, field)


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable market on one venue, with the venue's precision and filters.

    ``symbol`` is the unified name (``BTC/USDT``), ``venue_symbol`` the venue's own (``BTCUSDT``).
    Limits are inclusive and optional (``None`` = no limit). ``tick_size`` / ``lot_size`` are derived
    from the precision: the step itself in TICK_SIZE mode, ``10**-precision`` in DECIMAL_PLACES mode,
    and ``None`` in SIGNIFICANT_DIGITS mode, where the step depends on the magnitude.
    ``active`` is ``False`` while the venue has the market halted or closed to trading (ccxt's
    ``active``, Alpaca's ``tradable``); the pre-trade gate refuses such an instrument as halted.
    """

    venue: str
    symbol: str
    base: str
    quote: str
    precision_mode: PrecisionMode
    price_precision: Decimal
    amount_precision: Decimal
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    min_notional: Decimal | None = None
    max_notional: Decimal | None = None
    venue_symbol: str | None = None
    active: bool = True

    def __post_init__(self) -> None:
        for name in ("venue", "symbol", "base", "quote"):
            if not getattr(self, name):
                raise ValueError(f"Instrument.{name} must not be empty")
        object.__setattr__(self, "precision_mode", PrecisionMode(self.precision_mode))
        dp = self.precision_mode is PrecisionMode.DECIMAL_PLACES
        for name in ("price_precision", "amount_precision"):
            prec = as_decimal(getattr(self, name), name, allow_negative=dp)
            # Validates the precision once, here, rather than at every order.
            round_to_precision(Decimal(1), prec, self.precision_mode, Rounding.ROUND)
            object.__setattr__(self, name, prec)
        for lo, hi in (("min_amount", "max_amount"), ("min_price", "max_price"), ("min_notional", "max_notional")):
            low, high = _optional(getattr(self, lo), lo), _optional(getattr(self, hi), hi)
            if low is not None and high is not None and low > high:
                raise ValueError(f"Instrument {self.symbol}: {lo}={low} > {hi}={high}")
            object.__setattr__(self, lo, low)
            object.__setattr__(self, hi, high)

    @property
    def tick_size(self) -> Decimal | None:
        """The price step, or ``None`` in SIGNIFICANT_DIGITS mode."""
        return self._step(self.price_precision)

    @property
    def lot_size(self) -> Decimal | None:
        """The quantity step, or ``None`` in SIGNIFICANT_DIGITS mode."""
        return self._step(self.amount_precision)

    def _step(self, precision: Decimal) -> Decimal | None:
        if self.precision_mode is PrecisionMode.TICK_SIZE:
            return precision
        if self.precision_mode is PrecisionMode.DECIMAL_PLACES:
            return Decimal(1).scaleb(-int(precision))
        return None

    def amount_to_precision(self, amount: DecimalLike) -> Decimal:
        """``amount`` truncated to the lot grid; :class:`PrecisionError` if that leaves zero."""
        qty = round_to_precision(amount, self.amount_precision, self.precision_mode, Rounding.TRUNCATE)
        if qty.is_zero():
            raise PrecisionError("amount_precision", f"{self.symbol} amount {amount} truncates to zero")
        return qty

    def price_to_precision(self, price: DecimalLike) -> Decimal:
        """``price`` rounded half-up to the tick grid; :class:`PrecisionError` if that gives zero."""
        px = round_to_precision(price, self.price_precision, self.precision_mode, Rounding.ROUND)
        if px.is_zero():
            raise PrecisionError("price_precision", f"{self.symbol} price {price} rounds to zero")
        return px

    def check_order(self, quantity: Decimal, price: Decimal | None = None) -> SizedOrder:
        """Check an already-rounded order against every filter; raise :class:`InvalidOrder` on the first miss.

        ``price`` is the limit price, or for a market order a reference price (``None`` skips the price
        and notional filters: the venue checks those against its own last price).
        """
        qty = as_decimal(quantity, "quantity", allow_zero=False)
        if round_to_precision(qty, self.amount_precision, self.precision_mode, Rounding.TRUNCATE) != qty:
            raise InvalidOrder("lot", f"{self.symbol} quantity {qty} is not on the amount grid")
        _bounds("amount", qty, self.min_amount, self.max_amount, self.symbol)
        if price is None:
            return SizedOrder(qty, None, None)
        px = as_decimal(price, "price", allow_zero=False)
        if round_to_precision(px, self.price_precision, self.precision_mode, Rounding.ROUND) != px:
            raise InvalidOrder("tick", f"{self.symbol} price {px} is not on the price grid")
        _bounds("price", px, self.min_price, self.max_price, self.symbol)
        notional = DECIMAL_CONTEXT.multiply(qty, px)
        _bounds("notional", notional, self.min_notional, self.max_notional, self.symbol)
        return SizedOrder(qty, px, notional)

    def size_order(self, quantity: DecimalLike, price: DecimalLike | None = None) -> SizedOrder:
        """Round ``quantity`` (TRUNCATE) and ``price`` (ROUND) to the venue grid, then :meth:`check_order`.

        Never rounds a quantity up to reach a minimum: an order that is too small after truncation is
        rejected with :class:`InvalidOrder`, and the caller decides whether to skip or aggregate it.
        """
        qty = self.amount_to_precision(quantity)
        px = None if price is None else self.price_to_precision(price)
        return self.check_order(qty, px)

    @classmethod
    def from_ccxt_market(cls, venue: str, market: Mapping[str, Any], precision_mode: PrecisionMode) -> Instrument:
        """Build from a ccxt unified market dict (``exchange.markets[symbol]``) and ``exchange.precisionMode``.

        Pure: it reads the dict only. ccxt's numbers are floats or strings; both go through
        :func:`as_decimal` (floats by ``repr``).
        """
        limits = market.get("limits") or {}

        def limit(group: str, side: str) -> Decimal | None:
            value = (limits.get(group) or {}).get(side)
            return None if value is None else as_decimal(value, f"limits.{group}.{side}")

        precision = market.get("precision") or {}
        return cls(
            venue=venue,
            symbol=str(market["symbol"]),
            base=str(market["base"]),
            quote=str(market["quote"]),
            precision_mode=precision_mode,
            price_precision=as_decimal(precision["price"], "precision.price", allow_negative=True),
            amount_precision=as_decimal(precision["amount"], "precision.amount", allow_negative=True),
            min_amount=limit("amount", "min"),
            max_amount=limit("amount", "max"),
            min_price=limit("price", "min"),
            max_price=limit("price", "max"),
            min_notional=limit("cost", "min"),
            max_notional=limit("cost", "max"),
            venue_symbol=None if market.get("id") is None else str(market["id"]),
            active=market.get("active") is not False,  # ccxt: None means the venue did not say
        )


def _bounds(name: str, value: Decimal, low: Decimal | None, high: Decimal | None, symbol: str) -> None:
    if low is not None and value < low:
        raise InvalidOrder(f"min_{name}", f"{symbol} {name} {value} < minimum {low}")
    if high is not None and value > high:
        raise InvalidOrder(f"max_{name}", f"{symbol} {name} {value} > maximum {high}")
