"""Transaction costs: fee schedules, spread, market impact, pre-trade estimates and post-trade IS.

Units: prices and notionals in the quote currency, quantities in the base unit (shares, coins),
fee rates and cost ratios in basis points (1 bp = 1e-4). Every cost is positive when it costs the
trader money and negative when it pays (a maker rebate, a favourable price move), for buys and
sells alike. Optimal execution (Almgren–Chriss, TWAP/VWAP/POV schedules) lives in
:mod:`quant.execution` and venue choice in :mod:`quant.routing`; both are re-exported here.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from quant._validation import FloatArray, as_1d, same_length
from quant.execution import (
    AlmgrenChrissResult,
    _scalar,
    almgren_chriss,
    almgren_chriss_frontier,
    pov,
    round_schedule,
    twap,
    vwap,
)
from quant.routing import RoutingDecision, VenueLimits, choose_venues

__all__ = [
    "AlmgrenChrissResult",
    "CostEstimate",
    "FeeSchedule",
    "FeeTier",
    "Market",
    "Order",
    "RoutingDecision",
    "Shortfall",
    "VenueLimits",
    "almgren_chriss",
    "almgren_chriss_frontier",
    "choose_venues",
    "estimate_cost",
    "fee_rate_bps",
    "half_spread_cost",
    "implementation_shortfall",
    "pov",
    "round_schedule",
    "sqrt_impact",
    "twap",
    "vwap",
]

Side = Literal["buy", "sell"]
Liquidity = Literal["maker", "taker"]
BPS = 1e4


def _side_sign(side: str) -> float:
    if side == "buy":
        return 1.0
    if side == "sell":
        return -1.0
    raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")


def _liquidity(liquidity: str) -> Liquidity:
    if liquidity not in ("maker", "taker"):
        raise ValueError(f"liquidity must be 'maker' or 'taker', got {liquidity!r}")
    return "maker" if liquidity == "maker" else "taker"


# ---------------------------------------------------------------- fees


@dataclass(frozen=True)
class FeeTier:
    """One row of a venue's fee table: rates that apply from ``min_volume_30d`` upwards.

    ``maker_bps`` may be negative (a rebate); ``taker_bps`` must not be. ``min_volume_30d`` is
    the trailing 30-day traded notional in the schedule's currency (venues' own definition).
    """

    min_volume_30d: float
    maker_bps: float
    taker_bps: float

    def __post_init__(self) -> None:
        _scalar("min_volume_30d", self.min_volume_30d, lower=0.0)
        _scalar("maker_bps", self.maker_bps)
        _scalar("taker_bps", self.taker_bps, lower=0.0)


@dataclass(frozen=True)
class FeeSchedule:
    """A venue's tiered fee table; the tier is the highest one whose threshold the volume reaches.

    ``tiers`` must start at volume 0 and have strictly increasing thresholds.
    """

    tiers: tuple[FeeTier, ...]

    def __post_init__(self) -> None:
        tiers = tuple(self.tiers)
        object.__setattr__(self, "tiers", tiers)
        if not tiers:
            raise ValueError("a FeeSchedule needs at least one tier")
        if not all(isinstance(t, FeeTier) for t in tiers):
            raise ValueError("tiers must be FeeTier instances")
        if tiers[0].min_volume_30d != 0.0:
            raise ValueError(f"the first tier must start at volume 0, got {tiers[0].min_volume_30d}")
        thresholds = [t.min_volume_30d for t in tiers]
        if any(b <= a for a, b in itertools.pairwise(thresholds)):
            raise ValueError(f"tier thresholds must be strictly increasing, got {thresholds}")

    @classmethod
    def flat(cls, maker_bps: float, taker_bps: float) -> FeeSchedule:
        """A single-tier schedule."""
        return cls((FeeTier(0.0, maker_bps, taker_bps),))

    def rates(self, volume_30d: float = 0.0) -> tuple[float, float]:
        """(maker_bps, taker_bps) at this 30-day volume."""
        volume = _scalar("volume_30d", volume_30d, lower=0.0)
        tier = self.tiers[0]
        for t in self.tiers:
            if volume >= t.min_volume_30d:
                tier = t
        return tier.maker_bps, tier.taker_bps

    def fee(self, notional: float, liquidity: str = "taker", volume_30d: float = 0.0) -> float:
        """Fee in currency on an executed ``notional`` (>= 0); negative for a maker rebate."""
        notional = _scalar("notional", notional, lower=0.0)
        maker, taker = self.rates(volume_30d)
        return notional * (maker if _liquidity(liquidity) == "maker" else taker) / BPS


def fee_rate_bps(fees: FeeSchedule | float, liquidity: str = "taker", volume_30d: float = 0.0) -> float:
    """The rate in bps from a schedule, or ``fees`` itself when it is already a number of bps."""
    if isinstance(fees, FeeSchedule):
        maker, taker = fees.rates(volume_30d)
        return maker if _liquidity(liquidity) == "maker" else taker
    return _scalar("fees", fees)


# ---------------------------------------------------------------- spread and impact


def _wrap(template: Any, values: FloatArray) -> Any:
    if isinstance(template, pd.Series):
        return pd.Series(values, index=template.index)
    return float(values[0]) if values.shape == (1,) and np.ndim(template) == 0 else values


def half_spread_cost(bid: Any, ask: Any, quantity: Any) -> Any:
    """Cost in currency of crossing half the quoted spread: (ask − bid)/2 × quantity.

    The cost of a marketable order measured against the mid quote (the "effective half spread"
    when it fills at the touch). Scalars give a float; arrays/Series are element-wise, and a Series
    ``bid`` keeps its index. Raises ``ValueError`` for ask < bid, non-positive prices or negative
    quantity.
    """
    b = as_1d(np.atleast_1d(bid), "bid", allow_nan=False)
    a = as_1d(np.atleast_1d(ask), "ask", allow_nan=False)
    q = as_1d(np.atleast_1d(quantity), "quantity", allow_nan=False)
    b, a, q = np.broadcast_arrays(b, a, q)
    if (b <= 0).any():
        raise ValueError("bid must be positive")
    if (a < b).any():
        i = int(np.flatnonzero(a < b)[0])
        raise ValueError(f"ask < bid (crossed quote) at position {i}: bid={b[i]}, ask={a[i]}")
    if (q < 0).any():
        raise ValueError("quantity must be non-negative (the side carries the sign)")
    template = bid if isinstance(bid, pd.Series) else (ask if isinstance(ask, pd.Series) else quantity)
    return _wrap(template, np.ascontiguousarray(0.5 * (a - b) * q))


def sqrt_impact(quantity: Any, adv: Any, sigma: Any, c: float = 1.0) -> Any:
    """Square-root market impact c·σ·√(Q/ADV), as a fraction of price (multiply by 1e4 for bps).

    ``sigma`` is the daily volatility of returns (a fraction, e.g. 0.02), ``quantity`` Q and
    ``adv`` (average daily volume) are in the same units (shares, coins or notional). ``c`` is of
    order one (the "Y" prefactor). Source: the square-root law of Almgren, Thum, Hauptmann & Li
    (2005), "Direct estimation of equity market impact", Risk, and Tóth et al. (2011), "Anomalous
    price impact and the critical nature of liquidity in financial markets", Phys. Rev. X 1, 021006.
    It estimates the average impact of a metaorder executed over roughly a day; it is not a
    per-child-order cost.
    """
    c = _scalar("c", c, lower=0.0)
    q = as_1d(np.atleast_1d(quantity), "quantity", allow_nan=False)
    v = as_1d(np.atleast_1d(adv), "adv", allow_nan=False)
    s = as_1d(np.atleast_1d(sigma), "sigma", allow_nan=False)
    q, v, s = np.broadcast_arrays(q, v, s)
    if (q < 0).any():
        raise ValueError("quantity must be non-negative")
    if (v <= 0).any():
        raise ValueError("adv must be positive")
    if (s < 0).any():
        raise ValueError("sigma (daily volatility) must be non-negative")
    template = quantity if isinstance(quantity, pd.Series) else (adv if isinstance(adv, pd.Series) else sigma)
    return _wrap(template, np.ascontiguousarray(c * s * np.sqrt(q / v)))


# ---------------------------------------------------------------- pre-trade estimate


@dataclass(frozen=True)
class Order:
    """A parent order as the cost model sees it: unsigned quantity, the side carries the sign."""

    side: Side
    quantity: float
    limit_price: float | None = None
    liquidity: Liquidity = "taker"

    def __post_init__(self) -> None:
        _side_sign(self.side)
        _scalar("quantity", self.quantity, lower=0.0, strict=True)
        _liquidity(self.liquidity)
        if self.limit_price is not None:
            _scalar("limit_price", self.limit_price, lower=0.0, strict=True)


@dataclass(frozen=True)
class Market:
    """The market at arrival: touch, average daily volume (order's units), daily return volatility."""

    bid: float
    ask: float
    adv: float
    daily_vol: float

    def __post_init__(self) -> None:
        bid = _scalar("bid", self.bid, lower=0.0, strict=True)
        ask = _scalar("ask", self.ask, lower=0.0, strict=True)
        if ask < bid:
            raise ValueError(f"ask < bid (crossed quote): bid={bid}, ask={ask}")
        _scalar("adv", self.adv, lower=0.0, strict=True)
        _scalar("daily_vol", self.daily_vol, lower=0.0)

    @property
    def mid(self) -> float:
        return 0.5 * (self.bid + self.ask)


@dataclass(frozen=True)
class CostEstimate:
    """Expected cost of an order, each part in currency and in bps of quantity × arrival mid."""

    fees: float
    spread: float
    impact: float
    total: float
    fees_bps: float
    spread_bps: float
    impact_bps: float
    total_bps: float
    arrival_mid: float
    notional: float


def estimate_cost(
    order: Order, market: Market, fees: FeeSchedule | float, *, volume_30d: float = 0.0, impact_c: float = 1.0
) -> CostEstimate:
    """Pre-trade cost estimate: fees + spread + square-root impact, against the arrival mid.

    Conventions
    -----------
    * spread: a taker pays half the quoted spread. A maker fills at its limit (default: its own
      touch), so its spread term is (limit − mid)·Q for a buy and (mid − limit)·Q for a sell,
      negative at the touch; adverse selection and the risk of not filling are not priced.
    * impact: :func:`sqrt_impact` with ``market.daily_vol`` and ``market.adv`` × mid × Q, applied to
      both liquidities (the square-root law holds for metaorders however they are executed).
    * fees: the venue rate (``FeeSchedule`` at ``volume_30d``, or a flat number of bps) on the
      expected executed notional (mid ± spread ± impact) × Q; negative for a maker rebate.

    A taker order whose limit would not cross the touch, and a maker order whose limit would, are
    rejected with ``ValueError``: their liquidity is mislabelled.
    """
    sign = _side_sign(order.side)
    liquidity = _liquidity(order.liquidity)
    q, mid = float(order.quantity), market.mid
    far, near = (market.ask, market.bid) if sign > 0 else (market.bid, market.ask)
    limit = order.limit_price
    if liquidity == "taker":
        if limit is not None and sign * (limit - far) < 0:
            raise ValueError(f"a taker {order.side} with limit {limit} does not cross the touch {far}")
        spread = 0.5 * (market.ask - market.bid) * q
    else:
        price = near if limit is None else limit
        if sign * (price - far) >= 0 and market.ask > market.bid:
            raise ValueError(f"a maker {order.side} at {price} would cross the touch {far}; it is a taker")
        spread = sign * (price - mid) * q
    impact = float(sqrt_impact(q, market.adv, market.daily_vol, c=impact_c)) * mid * q
    executed = q * mid + sign * (spread + impact)
    fee = executed * fee_rate_bps(fees, liquidity, volume_30d) / BPS
    notional = q * mid
    total = fee + spread + impact
    return CostEstimate(
        fees=fee,
        spread=spread,
        impact=impact,
        total=total,
        fees_bps=fee / notional * BPS,
        spread_bps=spread / notional * BPS,
        impact_bps=impact / notional * BPS,
        total_bps=total / notional * BPS,
        arrival_mid=mid,
        notional=notional,
    )


# ---------------------------------------------------------------- post-trade


@dataclass(frozen=True)
class Shortfall:
    """Implementation shortfall and its parts, in currency and in bps of the paper portfolio.

    total = delay + trading + opportunity + fees; execution = delay + trading.
    """

    delay: float
    trading: float
    execution: float
    opportunity: float
    fees: float
    total: float
    delay_bps: float
    trading_bps: float
    execution_bps: float
    opportunity_bps: float
    fees_bps: float
    total_bps: float
    filled_quantity: float
    unfilled_quantity: float
    average_price: float


def _fills(fills: Any) -> tuple[FloatArray, FloatArray]:
    raw_p: Any
    raw_q: Any
    if isinstance(fills, pd.DataFrame):
        qty_col = "quantity" if "quantity" in fills.columns else "qty"
        if "price" not in fills.columns or qty_col not in fills.columns:
            raise ValueError(
                f"fills DataFrame needs columns 'price' and 'quantity' (or 'qty'), got {list(fills.columns)}"
            )
        raw_p, raw_q = fills["price"], fills[qty_col]
    elif isinstance(fills, np.ndarray) and fills.ndim == 2:
        if fills.shape[1] != 2:
            raise ValueError(f"fills array must have two columns (price, quantity), got shape {fills.shape}")
        raw_p, raw_q = fills[:, 0], fills[:, 1]
    else:
        try:
            raw_p, raw_q = fills
        except (TypeError, ValueError) as exc:
            raise ValueError("fills must be (prices, quantities), an (n, 2) array or a DataFrame") from exc
    p = as_1d(raw_p, "fill prices", allow_nan=False, min_length=0)
    q = as_1d(raw_q, "fill quantities", allow_nan=False, min_length=0)
    same_length(fill_prices=p, fill_quantities=q)
    if (p <= 0).any():
        raise ValueError("fill prices must be positive")
    if (q < 0).any():
        raise ValueError("fill quantities must be non-negative (the side carries the sign)")
    return p, q


def implementation_shortfall(
    side: str,
    arrival_price: float,
    fills: Any,
    intended_quantity: float,
    final_price: float | None = None,
    fees: float = 0.0,
    *,
    decision_price: float | None = None,
) -> Shortfall:
    """Perold's implementation shortfall of an executed order, with Kissell's decomposition.

    With s = +1 for a buy and −1 for a sell, P_d the decision price (``decision_price``, default
    the arrival price, in which case delay is zero), P_0 the arrival price, P̄ the average fill
    price of the filled quantity F, P_n the final price and U = intended − F the unfilled part:

    * delay       = s·(P_0 − P_d)·F       (the price moved between decision and arrival)
    * trading     = s·(P̄ − P_0)·F         (spread, impact and drift while working the order)
    * opportunity = s·(P_n − P_d)·U       (what the unfilled part would have cost or earned)
    * fees        = ``fees`` (currency; negative for net rebates)

    Positive means the trader lost money against the paper portfolio for buys and sells alike.
    bps are of the paper portfolio intended × P_d. ``final_price`` is required when U > 0.
    Sources: Perold (1988), "The implementation shortfall: paper versus reality", JPM 14(3);
    Kissell (2013), "The Science of Algorithmic Trading and Portfolio Management", ch. 3.
    """
    sign = _side_sign(side)
    p0 = _scalar("arrival_price", arrival_price, lower=0.0, strict=True)
    pd_ = p0 if decision_price is None else _scalar("decision_price", decision_price, lower=0.0, strict=True)
    intended = _scalar("intended_quantity", intended_quantity, lower=0.0, strict=True)
    fee = _scalar("fees", fees)
    prices, quantities = _fills(fills)
    filled = math.fsum(quantities.tolist())
    if filled > intended * (1.0 + 1e-12):
        raise ValueError(f"filled quantity {filled} exceeds the intended quantity {intended}")
    unfilled = max(intended - filled, 0.0)
    if unfilled > 0.0 and final_price is None:
        raise ValueError(f"final_price is required to price the unfilled {unfilled}")
    pn = pd_ if final_price is None else _scalar("final_price", final_price, lower=0.0, strict=True)
    paid = math.fsum((prices * quantities).tolist())
    average = paid / filled if filled > 0 else math.nan
    delay = sign * (p0 - pd_) * filled
    trading = sign * (paid - p0 * filled)
    opportunity = sign * (pn - pd_) * unfilled
    total = delay + trading + opportunity + fee
    paper = intended * pd_
    parts = {"delay": delay, "trading": trading, "execution": delay + trading, "opportunity": opportunity}
    parts |= {"fees": fee, "total": total}
    return Shortfall(
        **parts,
        **{f"{k}_bps": v / paper * BPS for k, v in parts.items()},
        filled_quantity=filled,
        unfilled_quantity=unfilled,
        average_price=average,
    )
