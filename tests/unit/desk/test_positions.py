"""desk.domain.positions: weighted average cost, realised P&L, positions as folds over fills."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desk.domain import Fill, Position, Side, fees_by_currency, position_from_fills
from desk.domain.errors import DuplicateFillConflict, InvalidFill

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _fill(n: int, side: Side, qty: str, price: str, *, fee: str = "0", symbol: str = "BTC/USDT") -> Fill:
    return Fill(
        venue="binance",
        venue_trade_id=f"t{n}",
        client_order_id=f"ldplan-{n}",
        symbol=symbol,
        side=side,
        quantity=Decimal(qty),
        price=Decimal(price),
        occurred_at=T0 + timedelta(seconds=n),
        fee=Decimal(fee),
        fee_currency="USDT",
    )


def test_adding_reducing_and_flipping() -> None:
    # Given buys of 1 @ 100 and 1 @ 110
    fills = [_fill(1, Side.BUY, "1", "100"), _fill(2, Side.BUY, "1", "110")]
    pos = position_from_fills(fills)
    # Then the average is the weighted cost
    assert (pos.quantity, pos.average_price, pos.realised_pnl) == (2, 105, 0)
    # When 0.5 is sold at 120, Then P&L is realised on the 0.5 and the average is unchanged
    pos = pos.apply(_fill(3, Side.SELL, "0.5", "120"))
    assert (pos.quantity, pos.average_price, pos.realised_pnl) == (Decimal("1.5"), 105, Decimal("7.5"))
    # When 2 are sold at 90, Then the 1.5 long closes at a loss and 0.5 short opens at 90
    pos = pos.apply(_fill(4, Side.SELL, "2", "90"))
    assert (pos.quantity, pos.average_price, pos.realised_pnl) == (Decimal("-0.5"), 90, Decimal("-15"))
    # When the short is bought back at 80, Then it is flat with the short's gain realised
    pos = pos.apply(_fill(5, Side.BUY, "0.5", "80"))
    assert pos.is_flat and pos.average_price == 0 and pos.realised_pnl == Decimal("-10")
    assert pos.fill_count == 5 and pos.last_fill_at == T0 + timedelta(seconds=5)


def test_unrealised_pnl_is_signed_for_shorts() -> None:
    short = position_from_fills([_fill(1, Side.SELL, "2", "100")])
    assert short.unrealised_pnl(Decimal("90")) == Decimal("20")


def test_empty_fills_need_a_symbol_and_give_a_flat_position() -> None:
    assert position_from_fills([], venue="binance", symbol="BTC/USDT") == Position("binance", "BTC/USDT")
    with pytest.raises(ValueError):
        position_from_fills([])


def test_mixed_symbols_and_conflicting_duplicates_are_refused() -> None:
    with pytest.raises(InvalidFill):
        position_from_fills([_fill(1, Side.BUY, "1", "1"), _fill(2, Side.BUY, "1", "1", symbol="ETH/USDT")])
    with pytest.raises(DuplicateFillConflict):
        position_from_fills([_fill(1, Side.BUY, "1", "1"), _fill(1, Side.BUY, "2", "1")])


def test_fees_are_summed_per_currency() -> None:
    fills = [_fill(1, Side.BUY, "1", "100", fee="0.1"), _fill(2, Side.SELL, "1", "100", fee="-0.02")]
    assert fees_by_currency(fills) == {"USDT": Decimal("0.08")}


_fills = st.lists(
    st.builds(
        lambda side, q, p: (side, Decimal(q).scaleb(-3), Decimal(p).scaleb(-2)),
        st.sampled_from(list(Side)),
        st.integers(1, 10**6),
        st.integers(1, 10**7),
    ),
    max_size=30,
).map(lambda rows: [_fill(i, s, str(q), str(p)) for i, (s, q, p) in enumerate(rows)])


@given(fills=_fills, data=st.data())
def test_a_position_is_the_sum_of_its_fills_in_any_order(fills: list[Fill], data: st.DataObject) -> None:
    # Given fills and a shuffled copy with some fills delivered twice
    shuffled = data.draw(st.permutations(fills))
    duplicated = shuffled + data.draw(st.lists(st.sampled_from(fills), max_size=5)) if fills else shuffled
    # When folded
    pos = position_from_fills(fills, venue="binance", symbol="BTC/USDT")
    again = position_from_fills(duplicated, venue="binance", symbol="BTC/USDT")
    # Then the quantity is the signed sum, and neither order nor duplicates change anything
    assert pos.quantity == sum((f.signed_quantity for f in fills), Decimal(0))
    assert again == pos
    assert pos.fill_count == len(fills)


@given(fills=_fills, mark=st.integers(1, 10**7).map(lambda p: Decimal(p).scaleb(-2)))
def test_realised_plus_unrealised_equals_cash_pnl(fills: list[Fill], mark: Decimal) -> None:
    # Given any fills, When marked at any price
    pos = position_from_fills(fills, venue="binance", symbol="BTC/USDT")
    # Then realised + unrealised P&L equals the cash flows plus the marked open quantity (WAC identity)
    # (exact arithmetic here; the average carries 50 significant digits, hence the tiny tolerance)
    with localcontext(prec=100):
        cash = -sum((f.signed_quantity * f.price for f in fills), Decimal(0))
        total = cash + pos.quantity * mark
        scale = 1 + sum((f.notional for f in fills), Decimal(0))
        assert abs(pos.realised_pnl + pos.unrealised_pnl(mark) - total) <= Decimal("1e-45") * scale
    # And a flat position carries no average price
    assert not pos.is_flat or pos.average_price == 0
