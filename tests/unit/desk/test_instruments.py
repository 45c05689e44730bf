"""desk.domain.instruments: Decimal conversion, ccxt precision semantics, venue filters."""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest
from ccxt.base.decimal_to_precision import (
    DECIMAL_PLACES,
    NO_PADDING,
    ROUND,
    SIGNIFICANT_DIGITS,
    TICK_SIZE,
    TRUNCATE,
    decimal_to_precision,
)
from hypothesis import assume, given
from hypothesis import strategies as st

from desk.domain import (
    Instrument,
    InvalidNumber,
    InvalidOrder,
    PrecisionError,
    PrecisionMode,
    Rounding,
    as_decimal,
    round_to_precision,
    to_venue_string,
)

CCXT_MODE = {
    PrecisionMode.DECIMAL_PLACES: DECIMAL_PLACES,
    PrecisionMode.SIGNIFICANT_DIGITS: SIGNIFICANT_DIGITS,
    PrecisionMode.TICK_SIZE: TICK_SIZE,
}
CCXT_ROUNDING = {Rounding.TRUNCATE: TRUNCATE, Rounding.ROUND: ROUND}

# Binance BTC/USDT as ccxt describes it (TICK_SIZE mode).
BTCUSDT = Instrument(
    venue="binance",
    symbol="BTC/USDT",
    base="BTC",
    quote="USDT",
    precision_mode=PrecisionMode.TICK_SIZE,
    price_precision=Decimal("0.01"),
    amount_precision=Decimal("0.00001"),
    min_amount=Decimal("0.00001"),
    max_amount=Decimal("9000"),
    min_price=Decimal("0.01"),
    max_price=Decimal("1000000"),
    min_notional=Decimal("5"),
    venue_symbol="BTCUSDT",
)


def _ccxt(value: Decimal, precision: Decimal, mode: PrecisionMode, rounding: Rounding) -> str:
    # ccxt mutates the thread's decimal context (rounding, Underflow trap); keep that out of other tests.
    with decimal.localcontext():
        prec: Decimal | int = precision if mode is PrecisionMode.TICK_SIZE else int(precision)
        return str(decimal_to_precision(str(value), CCXT_ROUNDING[rounding], prec, CCXT_MODE[mode], NO_PADDING))


def _decimals(max_digits: int = 12, max_places: int = 10) -> st.SearchStrategy[Decimal]:
    return st.builds(
        lambda m, k: Decimal(m).scaleb(-k),
        st.integers(min_value=0, max_value=10**max_digits),
        st.integers(min_value=0, max_value=max_places),
    )


_ticks = st.builds(
    lambda m, k: Decimal(m).scaleb(-k),
    st.sampled_from([1, 2, 5, 25, 50, 1, 3, 7, 125]) | st.integers(min_value=1, max_value=999),
    st.integers(min_value=-2, max_value=8),
)


@st.composite
def _precisions(draw: st.DrawFn) -> tuple[PrecisionMode, Decimal]:
    mode = draw(st.sampled_from(list(PrecisionMode)))
    if mode is PrecisionMode.DECIMAL_PLACES:
        return mode, Decimal(draw(st.integers(min_value=-3, max_value=10)))
    if mode is PrecisionMode.SIGNIFICANT_DIGITS:
        return mode, Decimal(draw(st.integers(min_value=1, max_value=12)))
    return mode, draw(_ticks)


# ---------------------------------------------------------------- Decimal conversion


def test_floats_become_decimals_through_repr_not_their_binary_expansion() -> None:
    # Given floats that are not exactly representable in binary
    # When converted
    # Then the shortest round-tripping text is kept
    assert as_decimal(0.1) == Decimal("0.1")
    assert as_decimal(1e-7) == Decimal("1E-7")
    assert as_decimal(27123.45) == Decimal("27123.45")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), "NaN", "sNaN", "Infinity", True, None, "x"])
def test_nan_inf_bool_and_garbage_are_rejected_with_a_typed_error(bad: object) -> None:
    with pytest.raises(InvalidNumber):
        as_decimal(bad, "quantity")


def test_negative_quantities_are_rejected_unless_allowed() -> None:
    # Given a negative quantity, When converted as a quantity, Then InvalidNumber names the field
    with pytest.raises(InvalidNumber, match="quantity"):
        as_decimal("-1", "quantity")
    # And it is accepted where signs are meaningful (P&L, signed positions)
    assert as_decimal("-1", allow_negative=True) == Decimal(-1)
    # And zero can be refused, while -0 normalises to 0
    with pytest.raises(InvalidNumber):
        as_decimal(0, allow_zero=False)
    assert str(as_decimal("-0")) == "0"


def test_venue_strings_are_fixed_point_without_trailing_zeros() -> None:
    assert to_venue_string(Decimal("1E+3")) == "1000"
    assert to_venue_string(Decimal("0.50")) == "0.5"
    assert to_venue_string(Decimal("1E-8")) == "0.00000001"
    assert to_venue_string(Decimal("0E-8")) == "0"


# ---------------------------------------------------------------- ccxt semantics


@given(value=_decimals(), precision=_precisions(), rounding=st.sampled_from(list(Rounding)))
def test_rounding_matches_ccxt_decimal_to_precision(
    value: Decimal, precision: tuple[PrecisionMode, Decimal], rounding: Rounding
) -> None:
    # Given a random non-negative value, precision mode, precision and rounding
    mode, prec = precision
    # When rounded by the desk and by ccxt
    ours = to_venue_string(round_to_precision(value, prec, mode, rounding))
    # Then the venue text is identical
    assert ours == _ccxt(value, prec, mode, rounding)


@pytest.mark.parametrize(
    ("value", "precision", "mode", "rounding", "expected"),
    [
        ("1.005", 2, PrecisionMode.DECIMAL_PLACES, Rounding.ROUND, "1.01"),  # half-up, not half-even
        ("1.009", 2, PrecisionMode.DECIMAL_PLACES, Rounding.TRUNCATE, "1"),
        ("1234.5", -2, PrecisionMode.DECIMAL_PLACES, Rounding.ROUND, "1200"),
        ("0.00123456", 3, PrecisionMode.SIGNIFICANT_DIGITS, Rounding.ROUND, "0.00123"),
        ("125", 2, PrecisionMode.SIGNIFICANT_DIGITS, Rounding.ROUND, "120"),  # ccxt's tie rule
        ("12.5", 2, PrecisionMode.SIGNIFICANT_DIGITS, Rounding.ROUND, "13"),
        ("1.25", "0.5", PrecisionMode.TICK_SIZE, Rounding.ROUND, "1.5"),
        ("1.24", "0.5", PrecisionMode.TICK_SIZE, Rounding.ROUND, "1"),
        ("0.123456789", "0.00001", PrecisionMode.TICK_SIZE, Rounding.TRUNCATE, "0.12345"),
    ],
)
def test_documented_rounding_examples(
    value: str, precision: object, mode: PrecisionMode, rounding: Rounding, expected: str
) -> None:
    assert to_venue_string(round_to_precision(value, str(precision), mode, rounding)) == expected


def test_results_do_not_depend_on_the_callers_decimal_context() -> None:
    # Given a thread context with 3 digits and banker's rounding
    with decimal.localcontext() as ctx:
        ctx.prec = 3
        ctx.rounding = decimal.ROUND_HALF_EVEN
        # When rounding a long value half-up at 2 decimals
        result = round_to_precision("123456.125", 2, PrecisionMode.DECIMAL_PLACES, Rounding.ROUND)
    # Then the private context decided
    assert result == Decimal("123456.13")


def test_invalid_precisions_are_rejected() -> None:
    with pytest.raises(InvalidNumber):
        round_to_precision("1", "0", PrecisionMode.TICK_SIZE, Rounding.ROUND)
    with pytest.raises(InvalidNumber):
        round_to_precision("1", "1.5", PrecisionMode.DECIMAL_PLACES, Rounding.ROUND)
    with pytest.raises(InvalidNumber):
        round_to_precision("1", "0", PrecisionMode.SIGNIFICANT_DIGITS, Rounding.ROUND)
    # And absurdly long values fail with the typed error, not a bare decimal signal
    with pytest.raises(InvalidNumber, match="too many digits"):
        round_to_precision("1E+60", 2, PrecisionMode.DECIMAL_PLACES, Rounding.ROUND)


# ---------------------------------------------------------------- instruments and filters


def test_amounts_truncate_and_prices_round_on_a_tick_size_venue() -> None:
    # Given Binance BTC/USDT
    # When an order is sized
    sized = BTCUSDT.size_order("0.123456789", "27123.456")
    # Then the amount is truncated to the lot and the price rounded to the tick
    assert (sized.quantity, sized.price) == (Decimal("0.12345"), Decimal("27123.46"))
    assert sized.notional == Decimal("0.12345") * Decimal("27123.46")
    assert (BTCUSDT.tick_size, BTCUSDT.lot_size) == (Decimal("0.01"), Decimal("0.00001"))


def test_values_that_round_to_zero_raise_precision_error() -> None:
    with pytest.raises(PrecisionError):
        BTCUSDT.amount_to_precision("0.000009")
    with pytest.raises(PrecisionError):
        BTCUSDT.price_to_precision("0.004")


@pytest.mark.parametrize(
    ("qty", "price", "reason"),
    [
        ("0.0001", "20000", "min_notional"),
        ("10000", "20000", "max_amount"),
        ("1", "2000000", "max_price"),
    ],
)
def test_filter_violations_carry_a_machine_readable_reason(qty: str, price: str, reason: str) -> None:
    with pytest.raises(InvalidOrder) as info:
        BTCUSDT.size_order(qty, price)
    assert info.value.reason == reason


def test_check_order_refuses_values_off_the_grid() -> None:
    # Given values that were not rounded, When checked, Then the grid filter names lot or tick
    with pytest.raises(InvalidOrder, match="lot"):
        BTCUSDT.check_order(Decimal("0.123456"), Decimal("27000"))
    with pytest.raises(InvalidOrder, match="tick"):
        BTCUSDT.check_order(Decimal("0.1"), Decimal("27000.001"))
    # And a market order (no price) skips the price and notional filters
    assert BTCUSDT.check_order(Decimal("0.0001")).notional is None


def test_instrument_from_a_ccxt_market_dict() -> None:
    # Given a market dict shaped like ccxt's (floats, as ccxt returns them)
    market = {
        "id": "ETHUSDT",
        "symbol": "ETH/USDT",
        "base": "ETH",
        "quote": "USDT",
        "precision": {"amount": 0.0001, "price": 0.01},
        "limits": {"amount": {"min": 0.0001, "max": 9000.0}, "price": {"min": 0.01, "max": None}, "cost": {"min": 5.0}},
    }
    # When converted
    inst = Instrument.from_ccxt_market("binance", market, PrecisionMode.TICK_SIZE)
    # Then every number is the Decimal of its repr
    assert inst.amount_precision == Decimal("0.0001") and inst.min_notional == Decimal("5.0")
    assert inst.max_price is None and inst.venue_symbol == "ETHUSDT"


def test_inconsistent_limits_are_rejected() -> None:
    with pytest.raises(ValueError, match="min_amount"):
        Instrument("v", "A/B", "A", "B", PrecisionMode.DECIMAL_PLACES, Decimal(2), Decimal(3), Decimal(5), Decimal(1))


def _on_grid(value: Decimal, precision: Decimal, mode: PrecisionMode) -> bool:
    # An oracle independent of round_to_precision: plain arithmetic on the digits.
    if mode is PrecisionMode.TICK_SIZE:
        return value % precision == 0
    if mode is PrecisionMode.DECIMAL_PLACES:
        return (value.scaleb(int(precision))) == (value.scaleb(int(precision))).to_integral_value()
    return len(value.normalize().as_tuple().digits) <= int(precision)


@st.composite
def _instruments(draw: st.DrawFn) -> Instrument:
    mode = draw(st.sampled_from(list(PrecisionMode)))
    if mode is PrecisionMode.DECIMAL_PLACES:
        price_prec, amount_prec = (Decimal(draw(st.integers(0, 8))) for _ in range(2))
    elif mode is PrecisionMode.SIGNIFICANT_DIGITS:
        price_prec, amount_prec = (Decimal(draw(st.integers(2, 8))) for _ in range(2))
    else:
        price_prec = draw(_ticks.filter(lambda t: t <= 10))
        amount_prec = draw(_ticks.filter(lambda t: t <= 10))

    def maybe(strategy: st.SearchStrategy[Decimal]) -> Decimal | None:
        return draw(st.none() | strategy)

    min_amount = maybe(_decimals(6, 6).filter(lambda d: d > 0))
    max_amount = maybe(_decimals(9, 2).filter(lambda d: d >= (min_amount or 0)))
    min_price = maybe(_decimals(6, 6).filter(lambda d: d > 0))
    max_price = maybe(_decimals(9, 2).filter(lambda d: d >= (min_price or 0)))
    min_notional = maybe(_decimals(4, 2).filter(lambda d: d > 0))
    max_notional = maybe(_decimals(10, 0).filter(lambda d: d >= (min_notional or 0)))
    return Instrument(
        "venue", "X/Y", "X", "Y", mode, price_prec, amount_prec,
        min_amount, max_amount, min_price, max_price, min_notional, max_notional,
    )  # fmt: skip


@given(inst=_instruments(), qty=_decimals(10, 8), price=_decimals(10, 8))
def test_a_sized_order_never_violates_the_venue_filters(inst: Instrument, qty: Decimal, price: Decimal) -> None:
    # Given any instrument and any requested quantity and price
    # When the order is sized
    try:
        sized = inst.size_order(qty, price)
    except InvalidOrder:
        return  # refusing is always allowed: the property is that nothing invalid gets through
    # Then quantity and price are on the grid, within every limit, and the quantity was not increased
    assert sized.price is not None and sized.notional is not None
    assert 0 < sized.quantity <= qty
    assert _on_grid(sized.quantity, inst.amount_precision, inst.precision_mode)
    assert _on_grid(sized.price, inst.price_precision, inst.precision_mode)
    for value, low, high in (
        (sized.quantity, inst.min_amount, inst.max_amount),
        (sized.price, inst.min_price, inst.max_price),
        (sized.quantity * sized.price, inst.min_notional, inst.max_notional),
    ):
        assert low is None or value >= low
        assert high is None or value <= high


@given(inst=_instruments(), qty_scale=st.integers(4, 40), price_scale=st.integers(4, 40))
def test_orders_comfortably_inside_the_limits_are_accepted(inst: Instrument, qty_scale: int, price_scale: int) -> None:
    # Given a quantity and price well inside every limit (so rounding cannot push them out)
    lot, tick = inst.lot_size or Decimal(0), inst.tick_size or Decimal(0)
    qty = max(inst.min_amount or Decimal(0), lot, Decimal("0.001")) * qty_scale
    price = max(inst.min_price or Decimal(0), tick, Decimal("0.01")) * price_scale
    assume(inst.max_amount is None or qty * 2 <= inst.max_amount)
    assume(inst.max_price is None or price * 2 <= inst.max_price)
    assume(inst.min_notional is None or qty * price >= inst.min_notional * 4)
    assume(inst.max_notional is None or qty * price * 2 <= inst.max_notional)
    # When sized, Then it is accepted
    sized = inst.size_order(qty, price)
    assert sized.quantity > 0
