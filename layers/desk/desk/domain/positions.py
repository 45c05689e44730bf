"""Positions derived from fills (the ledger is the fills; a position is a fold over them).

Conventions
-----------
* ``quantity`` is signed: long > 0, short < 0, and always equals the signed sum of the fills.
* ``average_price`` is the weighted average cost of the open quantity (``0`` when flat):
  - a fill that opens or adds to the position re-weights it with the fill's price;
  - a fill that reduces it leaves it unchanged and realises ``qty × (price − average) × sign``;
  - a fill that flips it (crosses zero) first closes the whole old position, realising its P&L,
    then opens the remainder at the fill price.
* ``realised_pnl`` is in the quote currency and gross of fees; fees are in each fill's own fee
  currency (:func:`fees_by_currency`), because venues charge in base, quote or a third token.
* :func:`position_from_fills` sorts fills by ``(occurred_at, venue_trade_id)`` before folding, so the
  result does not depend on the order in which the ledger returned them.
* Division (the average) runs at 50 significant digits in the desk's decimal context; round it for
  display, never for the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from desk.domain.errors import DuplicateFillConflict, InvalidFill
from desk.domain.instruments import DECIMAL_CONTEXT
from desk.domain.orders import Fill

__all__ = ["Position", "fees_by_currency", "position_from_fills"]

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Position:
    """A net position in one symbol on one venue."""

    venue: str
    symbol: str
    quantity: Decimal = _ZERO
    average_price: Decimal = _ZERO
    realised_pnl: Decimal = _ZERO
    fill_count: int = 0
    last_fill_at: datetime | None = None

    @property
    def is_flat(self) -> bool:
        return self.quantity.is_zero()

    def unrealised_pnl(self, mark: Decimal) -> Decimal:
        """``quantity × (mark − average_price)``: positive when the open position gains at ``mark``."""
        return DECIMAL_CONTEXT.multiply(self.quantity, DECIMAL_CONTEXT.subtract(mark, self.average_price))

    def apply(self, fill: Fill) -> Position:
        """The position after ``fill`` (weighted average cost; see the module docstring)."""
        if (fill.venue, fill.symbol) != (self.venue, self.symbol):
            raise InvalidFill(f"fill {fill.key} for {fill.venue}/{fill.symbol} applied to {self.venue}/{self.symbol}")
        ctx = DECIMAL_CONTEXT
        qty, avg, pnl = self.quantity, self.average_price, self.realised_pnl
        signed = fill.signed_quantity
        new_qty = ctx.add(qty, signed)
        if qty.is_zero() or (qty > 0) == (signed > 0):
            # Opening or adding: re-weight the cost of the open quantity.
            cost = ctx.add(ctx.multiply(qty.copy_abs(), avg), fill.notional)
            avg = ctx.divide(cost, new_qty.copy_abs())
        else:
            closed = min(qty.copy_abs(), fill.quantity)
            direction = Decimal(1) if qty > 0 else Decimal(-1)
            pnl = ctx.add(pnl, ctx.multiply(ctx.multiply(closed, ctx.subtract(fill.price, avg)), direction))
            if new_qty.is_zero():
                avg = _ZERO
            elif (new_qty > 0) != (qty > 0):
                avg = fill.price  # flipped: the remainder opens at the fill price
        last = fill.occurred_at if self.last_fill_at is None else max(self.last_fill_at, fill.occurred_at)
        return replace(
            self,
            quantity=new_qty,
            average_price=avg,
            realised_pnl=pnl,
            fill_count=self.fill_count + 1,
            last_fill_at=last,
        )


def position_from_fills(fills: Iterable[Fill], *, venue: str | None = None, symbol: str | None = None) -> Position:
    """Fold ``fills`` (one venue, one symbol) into a :class:`Position`. Pure.

    Identical duplicates (same venue and venue trade id, same content) count once; a duplicate key
    with different content raises :class:`DuplicateFillConflict`. ``venue`` and ``symbol`` are
    needed only when ``fills`` is empty (the flat position) or to assert what the fills are for.
    """
    unique: dict[tuple[str, str], Fill] = {}
    for fill in fills:
        seen = unique.get(fill.key)
        if seen is None:
            unique[fill.key] = fill
        elif seen != fill:
            raise DuplicateFillConflict(f"fill {fill.key} appears twice with different content")
    ordered = sorted(unique.values(), key=lambda f: (f.occurred_at, f.venue_trade_id))
    if ordered:
        venue = venue or ordered[0].venue
        symbol = symbol or ordered[0].symbol
    if not venue or not symbol:
        raise ValueError("position_from_fills needs venue and symbol when there are no fills")
    position = Position(venue=venue, symbol=symbol)
    for fill in ordered:
        position = position.apply(fill)
    return position


def fees_by_currency(fills: Iterable[Fill]) -> dict[str, Decimal]:
    """Total fees per fee currency (fills without a fee currency are skipped)."""
    totals: dict[str, Decimal] = {}
    for fill in fills:
        if fill.fee_currency is not None:
            totals[fill.fee_currency] = DECIMAL_CONTEXT.add(totals.get(fill.fee_currency, _ZERO), fill.fee)
    return totals
