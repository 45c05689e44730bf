"""Smart order routing as a pure function: split one marketable order across venues' books.

Why a greedy walk is optimal. With taker fees proportional to notional, the cost of buying q on
one venue is the sum over its ask levels, best first, of price × (1 + fee) × size taken: piecewise
linear with non-decreasing slopes, i.e. convex. The total is a separable convex function of the
per-venue quantities under one linear constraint Σ q_v = Q and per-venue boxes, a linear program
whose optimum takes units in order of marginal cost: if a dearer unit were bought while a cheaper
one were left, swapping them would lower the cost (the exchange argument of the fractional
knapsack). So walking the merged, fee-adjusted book from the best level is optimal. A venue's
maximum quantity and available balance only truncate its curve (the balance caps what the curve
can spend, and spending is increasing), so the walk stays optimal. A minimum notional is not
convex (zero, or at least the minimum), so :func:`choose_venues` enumerates which venues with a
minimum take part; within each choice the minimums are lower bounds, the problem is convex
again, and the walk is run after the forced minimum quantities have been taken.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np
import pandas as pd

from quant._validation import FloatArray, as_1d, same_length
from quant.execution import _scalar

__all__ = ["RoutingDecision", "VenueLimits", "choose_venues"]

BPS = 1e4
MAX_VENUES_WITH_MINIMUM = 12


@dataclass(frozen=True)
class VenueLimits:
    """Per-venue limits: order size cap, the venue's minimum order notional, and our balance there.

    ``available_balance`` is what the order can use on that venue: quote currency for a buy (it
    must cover notional + fees), base units for a sell.
    """

    max_quantity: float = math.inf
    min_notional: float = 0.0
    available_balance: float = math.inf

    def __post_init__(self) -> None:
        for name in ("max_quantity", "min_notional", "available_balance"):
            value = float(getattr(self, name))
            if math.isnan(value) or value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")


@dataclass(frozen=True)
class RoutingDecision:
    """Where the order goes.

    ``allocations`` has one row per venue (in the order given) with columns ``quantity``,
    ``average_price`` (fee-exclusive, NaN where nothing is sent), ``worst_price`` (the last level
    reached, the limit price to send), ``notional`` (Σ price × size) and ``fees``. ``total`` is the
    cash paid for a buy (notional + fees) or received for a sell (notional − fees).
    """

    side: str
    allocations: pd.DataFrame
    filled: float
    unfilled: float
    notional: float
    fees: float
    total: float

    @property
    def average_price(self) -> float:
        return self.notional / self.filled if self.filled > 0 else math.nan


def _levels(book: Any, name: str) -> tuple[FloatArray, FloatArray]:
    raw_p: Any
    raw_s: Any
    if isinstance(book, pd.DataFrame):
        size_col = next((c for c in ("size", "quantity", "qty") if c in book.columns), None)
        if "price" not in book.columns or size_col is None:
            raise ValueError(f"book {name!r} needs columns 'price' and 'size', got {list(book.columns)}")
        raw_p, raw_s = book["price"], book[size_col]
    elif isinstance(book, np.ndarray) and book.ndim == 2:
        if book.shape[1] != 2:
            raise ValueError(f"book {name!r} must have two columns (price, size), got shape {book.shape}")
        raw_p, raw_s = book[:, 0], book[:, 1]
    else:
        try:
            raw_p, raw_s = book
        except (TypeError, ValueError) as exc:
            raise ValueError(f"book {name!r} must be (prices, sizes), an (n, 2) array or a DataFrame") from exc
    p = as_1d(raw_p, f"book {name!r} prices", allow_nan=False, min_length=0)
    s = as_1d(raw_s, f"book {name!r} sizes", allow_nan=False, min_length=0)
    same_length(prices=p, sizes=s)
    if (p <= 0).any():
        raise ValueError(f"book {name!r} has a non-positive price")
    if (s < 0).any():
        raise ValueError(f"book {name!r} has a negative size")
    return p, s


def _take(sizes: FloatArray, amount: float) -> FloatArray:
    """Sizes taken from levels in order until ``amount`` is reached."""
    before = np.cumsum(sizes) - sizes
    out: FloatArray = np.clip(amount - before, 0.0, sizes)
    return out


def _reach(weights: FloatArray, sizes: FloatArray, budget: float) -> float:
    """Largest quantity whose Σ weight × size, walking levels in order, stays within ``budget``."""
    if math.isinf(budget):
        return float(sizes.sum())
    spend = np.cumsum(weights * sizes)
    j = int(np.searchsorted(spend, budget, side="right"))
    if j >= sizes.size:
        return float(sizes.sum())
    before_q = float(sizes[:j].sum())
    before_spend = float(spend[j - 1]) if j else 0.0
    return before_q + (budget - before_spend) / float(weights[j])


def _minimum(prices: FloatArray, sizes: FloatArray, min_notional: float) -> float:
    """Smallest quantity whose notional reaches ``min_notional`` (inf if the levels cannot)."""
    if min_notional <= 0:
        return 0.0
    notional = np.cumsum(prices * sizes)
    if notional.size == 0 or notional[-1] < min_notional:
        return math.inf
    j = int(np.searchsorted(notional, min_notional, side="left"))
    before_q = float(sizes[:j].sum())
    before_n = float(notional[j - 1]) if j else 0.0
    # A hair above the exact root, so that price × quantity is not a rounding error short of it.
    return min(before_q + (min_notional - before_n) / float(prices[j]) * (1 + 1e-12), float(sizes[: j + 1].sum()))


@dataclass
class _Venue:
    name: str
    prices: FloatArray  # best first, truncated to the venue's cap
    sizes: FloatArray
    unit_cost: FloatArray  # sign × price × (1 ± fee): ascending = best first, for buys and sells
    fee: float
    minimum: float  # quantity needed to reach the minimum notional (0 if none)


def _prepare(side: float, name: str, book: Any, fee_bps: float, lim: VenueLimits) -> _Venue:
    p, s = _levels(book, name)
    fee = fee_bps / BPS
    order = np.argsort(p * side, kind="stable")
    p, s = p[order], s[order]
    keep = s > 0
    p, s = p[keep], s[keep]
    weights = p * (1.0 + fee)
    cap = min(float(lim.max_quantity), float(s.sum()))
    cap = min(cap, _reach(weights, s, lim.available_balance) if side > 0 else lim.available_balance)
    s = _take(s, cap)
    keep = s > 0
    p, s = p[keep], s[keep]
    minimum = _minimum(p, s, lim.min_notional)
    if math.isinf(minimum):
        p, s, minimum = p[:0], s[:0], 0.0
    return _Venue(name, p, s, side * p * (1.0 + side * fee), fee, minimum)


def _walk(venues: list[_Venue], quantity: float) -> tuple[list[FloatArray], float]:
    """Forced minimums first, then the merged book from the best unit cost; returns takes and cost."""
    forced = [_take(v.sizes, v.minimum) for v in venues]
    rest = np.concatenate([v.sizes - f for v, f in zip(venues, forced, strict=True)])
    cost = np.concatenate([v.unit_cost for v in venues])
    order = np.argsort(cost, kind="stable")
    left = quantity - sum(float(f.sum()) for f in forced)
    extra = np.empty_like(rest)
    extra[order] = _take(rest[order], left)
    takes, start = [], 0
    for v, f in zip(venues, forced, strict=True):
        takes.append(f + extra[start : start + v.sizes.size])
        start += v.sizes.size
    total = math.fsum(float(np.dot(v.unit_cost, t)) for v, t in zip(venues, takes, strict=True))
    return takes, total


def choose_venues(
    side: str,
    quantity: float,
    books: Mapping[str, Any],
    fees: Mapping[str, Any],
    limits: Mapping[str, VenueLimits] | None = None,
) -> RoutingDecision:
    """Split a marketable order across venues to fill as much as possible at the least cost.

    Parameters
    ----------
    side : ``"buy"`` or ``"sell"``.
    quantity : the order quantity (> 0), in base units.
    books : venue → the levels the order trades against (asks for a buy, bids for a sell), as
        ``(prices, sizes)``, an (n, 2) array or a DataFrame with ``price`` and ``size``; any order.
    fees : venue → taker fee in bps (e.g. ``FeeSchedule.rates(v)[1]``); every venue needs one.
    limits : venue → :class:`VenueLimits`; venues not named have none.

    Returns
    -------
    RoutingDecision
        Per-venue quantity, average and worst price, notional and fees; filled, unfilled remainder,
        total cash. Objective: the largest fillable quantity first, then the least cash paid
        (buy) or the most received (sell), fees included. See the module docstring for why the
        greedy walk of the merged fee-adjusted book is optimal. Venues with a minimum notional are
        enumerated (at most 12 of them); ties go to the venue listed first.
    """
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    sign = 1.0 if side == "buy" else -1.0
    qty = _scalar("quantity", quantity, lower=0.0, strict=True)
    if not books:
        raise ValueError("books is empty: no venue to route to")
    limits = dict(limits or {})
    unknown = sorted(set(limits) - set(books))
    if unknown:
        raise ValueError(f"limits name venues without a book: {unknown}")
    missing = sorted(set(books) - set(fees))
    if missing:
        raise ValueError(f"no taker fee for venues {missing}")
    venues = [
        _prepare(sign, str(name), book, _scalar(f"fees[{name!r}]", fees[name]), limits.get(name, VenueLimits()))
        for name, book in books.items()
    ]
    optional = [i for i, v in enumerate(venues) if v.minimum > 0]
    if len(optional) > MAX_VENUES_WITH_MINIMUM:
        raise ValueError(f"at most {MAX_VENUES_WITH_MINIMUM} venues may have a minimum notional, got {len(optional)}")
    best: tuple[float, float, list[FloatArray], list[_Venue]] | None = None
    for chosen in product((True, False), repeat=len(optional)):
        excluded = {i for i, on in zip(optional, chosen, strict=True) if not on}
        trial = [
            v if i not in excluded else _Venue(v.name, v.prices[:0], v.sizes[:0], v.unit_cost[:0], v.fee, 0.0)
            for i, v in enumerate(venues)
        ]
        if sum(v.minimum for v in trial) > qty:
            continue
        fill = min(qty, math.fsum(float(v.sizes.sum()) for v in trial))
        takes, cost = _walk(trial, fill)
        tol = 1e-12 * max(qty, 1.0)
        if best is None or fill > best[0] + tol or (fill >= best[0] - tol and cost < best[1]):
            best = (fill, cost, takes, trial)
    if best is None:  # every combination of minimums exceeds the order: send nothing
        best = (0.0, 0.0, [np.zeros(v.sizes.size) for v in venues], venues)
    rows = []
    for v, take in zip(best[3], best[2], strict=True):
        q = math.fsum(take.tolist())
        notional = math.fsum((v.prices * take).tolist())
        reached = np.flatnonzero(take > 0)
        rows.append(
            {
                "venue": v.name,
                "quantity": q,
                "average_price": notional / q if q > 0 else math.nan,
                "worst_price": float(v.prices[reached[-1]]) if reached.size else math.nan,
                "notional": notional,
                "fees": notional * v.fee,
            }
        )
    table = pd.DataFrame(rows).set_index("venue")
    filled = math.fsum(table["quantity"].tolist())
    notional = math.fsum(table["notional"].tolist())
    fee_total = math.fsum(table["fees"].tolist())
    return RoutingDecision(
        side=side,
        allocations=table,
        filled=filled,
        unfilled=max(qty - filled, 0.0),
        notional=notional,
        fees=fee_total,
        total=notional + sign * fee_total,
    )
