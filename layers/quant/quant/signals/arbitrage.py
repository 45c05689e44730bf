"""Cross-exchange arbitrage: buy where the ask is low, sell where the bid is high, after fees.

A pure function of order-book snapshots: no clock, no I/O. It answers "what could be crossed right
now, and for how much", not whether it is worth the transfer latency and inventory risk.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from quant._validation import FloatArray

__all__ = ["cross_exchange_opportunities"]

_COLUMNS = [
    "buy_venue",
    "sell_venue",
    "quantity",
    "buy_vwap",
    "sell_vwap",
    "gross_edge_bps",
    "net_edge_bps",
    "net_profit",
]


def _levels(side: Any, name: str, descending: bool) -> FloatArray:
    arr = np.asarray(side, dtype=np.float64)
    if arr.size == 0:
        return np.empty((0, 2))
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must be rows of (price, quantity), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if (arr[:, 0] <= 0.0).any() or (arr[:, 1] < 0.0).any():
        raise ValueError(f"{name} needs positive prices and non-negative quantities")
    order = np.argsort(-arr[:, 0] if descending else arr[:, 0], kind="stable")
    return np.ascontiguousarray(arr[order])


def _limit(limits: float | Mapping[Any, float] | None, buy: str, sell: str) -> float:
    if limits is None:
        return np.inf
    value = float(limits.get((buy, sell), np.inf) if isinstance(limits, Mapping) else limits)
    if not value >= 0.0:
        raise ValueError(f"transfer limit for {buy}->{sell} must be >= 0, got {value!r}")
    return value


def cross_exchange_opportunities(
    books: Mapping[str, tuple[Any, Any]],
    fees: Mapping[str, float],
    transfer_limits: float | Mapping[tuple[str, str], float] | None = None,
    min_edge_bps: float = 0.0,
) -> pd.DataFrame:
    """Every profitable (buy venue, sell venue) crossing, walking both books level by level.

    For each ordered pair of venues (A, B), buy A's asks from the best up and sell into B's bids
    from the best down while the *marginal* unit still earns more than ``min_edge_bps`` after
    taker fees: ``bid_B (1 - f_B) / (ask_A (1 + f_A)) - 1 > min_edge_bps / 1e4``. Quantity is
    capped by both books' depth and by the transfer limit of the pair.

    Parameters
    ----------
    books : mapping venue -> (bids, asks)
        Each side is rows of (price, quantity) in base units; any order (sorted here).
    fees : mapping venue -> taker fee in bps
        Non-negative; every venue in ``books`` needs one.
    transfer_limits : float or mapping (buy venue, sell venue) -> quantity, optional
        Largest base quantity that can be moved from the buy venue to the sell venue; a float
        applies to every pair; a pair missing from the mapping is unlimited.
    min_edge_bps : float
        Smallest marginal net edge worth taking.

    Returns
    -------
    DataFrame
        One row per pair with a positive quantity: buy_venue, sell_venue, quantity, buy_vwap,
        sell_vwap, gross_edge_bps ``(sell_vwap / buy_vwap - 1) 1e4``, net_edge_bps (the same
        after fees on both legs) and net_profit in quote currency; sorted by net_profit,
        largest first. Gross edge is never below net edge, as fees are non-negative.
    """
    parsed: dict[str, tuple[FloatArray, FloatArray]] = {}
    for venue, book in books.items():
        if not isinstance(book, tuple) or len(book) != 2:
            raise ValueError(f"books[{venue!r}] must be a (bids, asks) tuple")
        parsed[venue] = (_levels(book[0], f"{venue} bids", True), _levels(book[1], f"{venue} asks", False))
    fee_rate: dict[str, float] = {}
    for venue in parsed:
        if venue not in fees:
            raise ValueError(f"no taker fee given for venue {venue!r}")
        f = float(fees[venue])
        if not 0.0 <= f < 1e4:
            raise ValueError(f"fee for {venue!r} must be in [0, 10000) bps, got {f!r}")
        fee_rate[venue] = f / 1e4
    hurdle = 1.0 + float(min_edge_bps) / 1e4
    rows = []
    for buy, (_, asks) in parsed.items():
        for sell, (bids, _) in parsed.items():
            if buy == sell:
                continue
            row = _walk(asks, bids, fee_rate[buy], fee_rate[sell], _limit(transfer_limits, buy, sell), hurdle)
            if row is not None:
                rows.append((buy, sell, *row))
    table = pd.DataFrame(rows, columns=_COLUMNS)
    return table.sort_values("net_profit", ascending=False, kind="mergesort").reset_index(drop=True)


def _walk(
    asks: FloatArray, bids: FloatArray, fee_buy: float, fee_sell: float, limit: float, hurdle: float
) -> tuple[float, float, float, float, float, float] | None:
    i = j = 0
    ask_left = asks[0, 1] if asks.shape[0] else 0.0
    bid_left = bids[0, 1] if bids.shape[0] else 0.0
    qty = cost = proceeds = 0.0
    while i < asks.shape[0] and j < bids.shape[0] and qty < limit:
        ask, bid = asks[i, 0], bids[j, 0]
        if bid * (1.0 - fee_sell) <= ask * (1.0 + fee_buy) * hurdle:
            break
        q = min(ask_left, bid_left, limit - qty)
        qty += q
        cost += q * ask
        proceeds += q * bid
        ask_left -= q
        bid_left -= q
        if ask_left <= 0.0:
            i += 1
            ask_left = asks[i, 1] if i < asks.shape[0] else 0.0
        if bid_left <= 0.0:
            j += 1
            bid_left = bids[j, 1] if j < bids.shape[0] else 0.0
    if qty <= 0.0:
        return None
    buy_vwap, sell_vwap = cost / qty, proceeds / qty
    paid, received = cost * (1.0 + fee_buy), proceeds * (1.0 - fee_sell)
    gross = (sell_vwap / buy_vwap - 1.0) * 1e4
    net = (received / paid - 1.0) * 1e4
    return qty, buy_vwap, sell_vwap, gross, net, received - paid
