"""The paper venue's fill model: book walking, quote crossing, fees and optional impact.

Rules
-----
* A marketable order (market, or a limit through the touch) takes liquidity level by level from the
  best price outwards, never past its limit, and never more than a level holds: a thin book gives a
  partial fill. Each level taken is one execution at that level's price, as the taker.
* A resting limit order fills, as the maker and at its own limit price, when a later quote crosses
  it (ask <= buy limit, bid >= sell limit), up to the size shown on the crossing side.
* Fees are ``FeeSchedule.fee(notional, liquidity)`` from :mod:`quant.costs`, in the quote currency.
* Impact (optional) moves each execution price against the trader by the square-root law
  (:func:`quant.costs.sqrt_impact`) on the quantity executed so far, then onto the tick grid.

The model consumes nothing: the book a caller fed in stays as it is, so an order placed twice
against the same snapshot would see the same liquidity (idempotency by client order id prevents
that; the replay feeds a fresh snapshot each step).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from desk.domain.instruments import DECIMAL_CONTEXT, Instrument, as_decimal
from desk.domain.orders import Liquidity, Side
from desk.schemas.market import BookLevel, Quote
from desk.venues.paper.config import ImpactModel
from quant.costs import FeeSchedule, sqrt_impact

__all__ = ["Execution", "cross_quote", "fee_for", "walk_book", "with_impact"]


@dataclass(frozen=True, slots=True)
class Execution:
    quantity: Decimal
    price: Decimal
    liquidity: Liquidity

    @property
    def notional(self) -> Decimal:
        return DECIMAL_CONTEXT.multiply(self.quantity, self.price)


def _within(side: Side, price: Decimal, limit: Decimal | None) -> bool:
    return limit is None or (price <= limit if side is Side.BUY else price >= limit)


def walk_book(
    side: Side, quantity: Decimal, levels: Sequence[BookLevel], limit: Decimal | None = None
) -> list[Execution]:
    """Take up to ``quantity`` from ``levels`` (the opposite side, best first) as the taker."""
    executions: list[Execution] = []
    remaining = quantity
    for level in levels:
        if remaining <= 0 or not _within(side, level.price, limit):
            break
        take = min(remaining, level.quantity)
        executions.append(Execution(take, level.price, Liquidity.TAKER))
        remaining = DECIMAL_CONTEXT.subtract(remaining, take)
    return executions


def cross_quote(side: Side, remaining: Decimal, limit: Decimal, quote: Quote) -> Execution | None:
    """The maker fill of a resting limit order that ``quote`` crosses, or ``None``."""
    touch, size = (quote.ask, quote.ask_size) if side is Side.BUY else (quote.bid, quote.bid_size)
    if remaining <= 0 or size <= 0 or not _within(side, touch, limit):
        return None
    return Execution(min(remaining, size), limit, Liquidity.MAKER)


def with_impact(
    executions: Sequence[Execution], side: Side, symbol: str, impact: ImpactModel | None, instrument: Instrument
) -> list[Execution]:
    """Executions moved against the trader by square-root impact on the cumulative quantity."""
    if impact is None or symbol not in impact.adv or symbol not in impact.daily_vol:
        return list(executions)
    moved: list[Execution] = []
    done = Decimal(0)
    for e in executions:
        done = DECIMAL_CONTEXT.add(done, e.quantity)
        fraction = float(sqrt_impact(float(done), impact.adv[symbol], impact.daily_vol[symbol], c=impact.c))
        shift = DECIMAL_CONTEXT.multiply(e.price, as_decimal(fraction, "impact"))
        price = DECIMAL_CONTEXT.add(e.price, shift) if side is Side.BUY else DECIMAL_CONTEXT.subtract(e.price, shift)
        moved.append(Execution(e.quantity, instrument.price_to_precision(price), e.liquidity))
    return moved


def fee_for(execution: Execution, fees: FeeSchedule) -> Decimal:
    """``fees.fee`` on the execution's notional, as a Decimal (through ``repr``, so it equals the float)."""
    return as_decimal(fees.fee(float(execution.notional), execution.liquidity.value), "fee", allow_negative=True)
