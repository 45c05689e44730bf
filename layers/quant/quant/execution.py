"""Optimal execution (Almgren–Chriss) and the schedules a parent order is sliced into.

Almgren–Chriss follows Almgren & Chriss (2000), "Optimal execution of portfolio transactions",
Journal of Risk 3(2), 5–39: discrete time, linear permanent impact g(v) = γv, linear temporary
impact h(v) = ε·sgn(n) + (η/τ)·n, arithmetic Brownian price with σ in currency per share per
unit time^½. Schedules (TWAP, VWAP, POV) return float quantities that sum to the order quantity
exactly; venue lot rounding is :func:`round_schedule` here, and Decimal precision is applied later
in ``desk.domain``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from quant._validation import FloatArray, as_1d

__all__ = [
    "AlmgrenChrissResult",
    "almgren_chriss",
    "almgren_chriss_frontier",
    "pov",
    "round_schedule",
    "twap",
    "vwap",
]


def _scalar(name: str, value: Any, *, lower: float | None = None, strict: bool = False) -> float:
    """A finite real number, optionally bounded below (``strict`` makes the bound exclusive)."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out}")
    if lower is not None and (out <= lower if strict else out < lower):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {lower}, got {out}")
    return out


def _count(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


# ---------------------------------------------------------------- Almgren–Chriss


@dataclass(frozen=True)
class AlmgrenChrissResult:
    """One Almgren–Chriss trajectory and its cost distribution (all in the problem's units).

    ``holdings`` has N + 1 values x_0 = X … x_N = 0 at ``times`` t_k = kτ; ``trades`` has N values
    n_k = x_{k−1} − x_k (shares sold in period k). ``expected_cost`` E and ``variance`` V are those
    of the implementation shortfall X·S_0 − Σ n_k·S̃_k in currency and currency².
    """

    times: FloatArray
    holdings: FloatArray
    trades: FloatArray
    expected_cost: float
    variance: float
    kappa: float
    kappa_tilde: float
    tau: float
    eta_tilde: float
    lam: float

    @property
    def utility(self) -> float:
        """The objective the trajectory minimises, E + λV."""
        return self.expected_cost + self.lam * self.variance


def _ac_params(
    X: float, T: float, N: int, sigma: float, eta: float, epsilon: float, gamma: float
) -> tuple[float, float, float, int, float, float, float, float]:
    X = _scalar("X", X, lower=0.0, strict=True)
    T = _scalar("T", T, lower=0.0, strict=True)
    N = _count("N", N)
    sigma = _scalar("sigma", sigma, lower=0.0)
    eta = _scalar("eta", eta, lower=0.0, strict=True)
    epsilon = _scalar("epsilon", epsilon, lower=0.0)
    gamma = _scalar("gamma", gamma, lower=0.0)
    tau = T / N
    eta_tilde = eta - 0.5 * gamma * tau
    if eta_tilde <= 0.0:
        # The paper needs η̃ > 0 for the cost to be convex in the trade list; otherwise the
        # "optimal" strategy trades in one block and the closed form does not apply.
        raise ValueError(
            f"eta - gamma*tau/2 must be positive, got {eta_tilde:.3g} (eta={eta}, gamma={gamma}, tau={tau})"
        )
    return X, T, tau, N, sigma, epsilon, gamma, eta_tilde


def _kappa(lam: FloatArray, sigma: float, eta_tilde: float, tau: float) -> tuple[FloatArray, FloatArray]:
    kappa_tilde_sq = lam * sigma * sigma / eta_tilde
    y = 0.5 * kappa_tilde_sq * tau * tau
    # arccosh(1 + y) written as log1p so that κ stays accurate when λσ²τ²/η̃ is tiny.
    kappa = np.log1p(y + np.sqrt(y * (y + 2.0))) / tau
    return kappa, np.sqrt(kappa_tilde_sq)


def _trajectories(X: float, T: float, times: FloatArray, kappa: FloatArray) -> FloatArray:
    """x(t) = X·sinh(κ(T − t))/sinh(κT), one row per κ, overflow-free and exact at κ = 0."""
    k = kappa[:, None]
    a = k * (T - times[None, :])
    b = k * T
    with np.errstate(invalid="ignore", divide="ignore"):
        # sinh(a)/sinh(b) = e^{a−b}·(1 − e^{−2a})/(1 − e^{−2b}); expm1 keeps small κ accurate.
        ratio = np.exp(a - b) * np.expm1(-2.0 * a) / np.expm1(-2.0 * b)
    linear = np.broadcast_to((T - times[None, :]) / T, ratio.shape)
    ratio = np.where(b > 0.0, ratio, linear)
    ratio[:, -1] = 0.0
    ratio[:, 0] = 1.0
    out: FloatArray = X * ratio
    return out


def _moments(
    holdings: FloatArray, X: float, tau: float, sigma: float, epsilon: float, gamma: float, eta_tilde: float
) -> tuple[FloatArray, FloatArray]:
    trades = -np.diff(holdings, axis=-1)
    expected = 0.5 * gamma * X * X + epsilon * np.abs(trades).sum(axis=-1) + eta_tilde / tau * (trades**2).sum(axis=-1)
    variance = sigma * sigma * tau * (holdings[..., 1:] ** 2).sum(axis=-1)
    return expected, variance


def almgren_chriss(
    X: float, T: float, N: int, sigma: float, eta: float, epsilon: float, gamma: float, lam: float
) -> AlmgrenChrissResult:
    """Mean–variance optimal liquidation of ``X`` shares over ``T`` in ``N`` equal periods.

    Parameters
    ----------
    X : shares to liquidate (> 0). A buy program is the mirror image: same schedule, same E and V.
    T : horizon, in the time unit of ``sigma`` (days in the paper's example).
    N : number of periods (>= 1); τ = T/N.
    sigma : volatility of the price in currency per share per unit time^½ (absolute, not %).
    eta : temporary impact, currency per share per (share per unit time).
    epsilon : fixed cost per share (half the spread plus fees), currency.
    gamma : permanent impact, currency per share per share.
    lam : risk aversion λ >= 0, per unit of currency; λ = 0 gives the linear (TWAP) schedule.

    Returns
    -------
    AlmgrenChrissResult
        times t_k, holdings x_k = X·sinh(κ(T − t_k))/sinh(κT), trades n_k, E, V, κ and κ̃.

    Notes
    -----
    Closed form of Almgren & Chriss (2000), section 2.2: with η̃ = η − γτ/2 and κ̃² = λσ²/η̃,
    κ solves (2/τ²)(cosh κτ − 1) = κ̃². E and V are evaluated from the trajectory with the
    paper's eq. for any strategy, E = ½γX² + εΣ|n_k| + (η̃/τ)Σn_k² and V = σ²Στ x_k² (k = 1..N),
    which equal its closed-form expressions for the optimal one. The drift α is taken as zero.
    """
    X, T, tau, N, sigma, epsilon, gamma, eta_tilde = _ac_params(X, T, N, sigma, eta, epsilon, gamma)
    lam = _scalar("lam", lam, lower=0.0)
    times = np.arange(N + 1, dtype=np.float64) * tau
    times[-1] = T
    kappa, kappa_tilde = _kappa(np.array([lam]), sigma, eta_tilde, tau)
    holdings = _trajectories(X, T, times, kappa)
    expected, variance = _moments(holdings, X, tau, sigma, epsilon, gamma, eta_tilde)
    x = holdings[0]
    return AlmgrenChrissResult(
        times=times,
        holdings=x,
        trades=-np.diff(x),
        expected_cost=float(expected[0]),
        variance=float(variance[0]),
        kappa=float(kappa[0]),
        kappa_tilde=float(kappa_tilde[0]),
        tau=tau,
        eta_tilde=eta_tilde,
        lam=lam,
    )


def almgren_chriss_frontier(
    X: float, T: float, N: int, sigma: float, eta: float, epsilon: float, gamma: float, lams: Any
) -> pd.DataFrame:
    """The efficient frontier: (λ, E, V) of the optimal trajectory for each λ in ``lams``.

    Same model, units and conventions as :func:`almgren_chriss`, vectorised over λ. Along the
    frontier E increases and V decreases as λ grows (Almgren & Chriss 2000, section 2.4).

    Returns
    -------
    DataFrame with columns ``lam``, ``E``, ``V``, ``kappa``, one row per λ in the given order.
    """
    X, T, tau, N, sigma, epsilon, gamma, eta_tilde = _ac_params(X, T, N, sigma, eta, epsilon, gamma)
    lam = as_1d(lams, "lams", allow_nan=False)
    if (lam < 0).any():
        raise ValueError(f"lams must be >= 0, got {float(lam.min())}")
    times = np.arange(N + 1, dtype=np.float64) * tau
    times[-1] = T
    kappa, _ = _kappa(lam, sigma, eta_tilde, tau)
    holdings = _trajectories(X, T, times, kappa)
    expected, variance = _moments(holdings, X, tau, sigma, epsilon, gamma, eta_tilde)
    return pd.DataFrame({"lam": lam, "E": expected, "V": variance, "kappa": kappa})


# ---------------------------------------------------------------- schedules


def _exact_total(q: FloatArray, total: float, at: int | None = None) -> FloatArray:
    """Snap non-negative slices to a grid so that they sum to ``total`` exactly, in any order.

    The grid is u = ulp(total): every slice becomes an integer multiple of u (moving it by at most
    u/2) and the integer residue goes to one slice (the largest, or ``at``). Every partial sum is
    then a multiple of u no larger than total < 2^53·u, hence exactly representable, so sequential,
    pairwise (numpy) and exact (math.fsum) sums all equal ``total``: a plain q/n split does not.
    """
    if q.size == 0 or total == 0.0:
        return np.zeros_like(q)
    unit = math.ulp(total)  # 2**(exponent - 53) for a normal total; the smallest subnormal below 2**-1022
    units = np.rint(q / unit)
    i = int(np.argmax(units)) if at is None else at
    units[i] += round(total / unit) - math.fsum(units.tolist())
    out: FloatArray = units * unit
    return out


def _schedule(index: Any, quantities: FloatArray, name: str = "bucket") -> pd.DataFrame:
    frame = pd.DataFrame({"quantity": quantities}, index=index)
    if frame.index.name is None:
        frame.index.name = name
    return frame


def twap(quantity: float, start: Any, end: Any, n_slices: int) -> pd.DataFrame:
    """Time-weighted schedule: ``n_slices`` equal slices starting at evenly spaced times.

    ``start`` and ``end`` are timestamps (anything ``pd.Timestamp`` accepts) or plain numbers
    (e.g. minutes from now). Slice k starts at start + k·(end − start)/n_slices; the last slice ends
    at ``end``. Returns a DataFrame indexed by slice start with one column ``quantity``
    (float, summing exactly to ``quantity``).
    """
    quantity = _scalar("quantity", quantity, lower=0.0)
    n = _count("n_slices", n_slices)
    if isinstance(start, (int, float, np.integer, np.floating)) and isinstance(
        end, (int, float, np.integer, np.floating)
    ):
        s, e = _scalar("start", start), _scalar("end", end)
        if e <= s:
            raise ValueError(f"end must be after start, got start={s}, end={e}")
        index: Any = pd.Index(s + (e - s) * np.arange(n) / n, name="start")
    else:
        ts, te = pd.Timestamp(start), pd.Timestamp(end)
        if te <= ts:
            raise ValueError(f"end must be after start, got start={ts}, end={te}")
        index = pd.date_range(ts, te, periods=n + 1)[:-1].rename("start")
    return _schedule(index, _exact_total(np.full(n, quantity / n), quantity))


def vwap(quantity: float, volume_profile: Any) -> pd.DataFrame:
    """Volume-weighted schedule: slice b gets ``quantity``·v_b/Σv of the (forecast) profile.

    ``volume_profile`` is a non-negative volume (or weight) per intraday bucket, e.g. the mean
    volume by hour of day over past sessions; it is normalised here, so any scale works. The
    schedule keeps the profile's index (bucket labels). Convention: the classic static VWAP of
    Berkowitz, Logue & Noser (1988) / Madhavan (2002), i.e. participation proportional to the
    forecast volume curve, not adapted to realised volume.
    """
    quantity = _scalar("quantity", quantity, lower=0.0)
    v = as_1d(volume_profile, "volume_profile", allow_nan=False)
    if (v < 0).any():
        raise ValueError(f"volume_profile must be non-negative, got {float(v.min())} at {int(np.argmin(v))}")
    total = float(v.sum())
    if total <= 0.0:
        raise ValueError("volume_profile sums to zero: no bucket to trade in")
    index = volume_profile.index if isinstance(volume_profile, pd.Series) else pd.RangeIndex(v.size, name="bucket")
    return _schedule(index, _exact_total(quantity * v / total, quantity))


def pov(
    quantity: float,
    market_volumes: Any,
    rate: float,
    *,
    insufficient: Literal["raise", "last"] = "raise",
) -> pd.DataFrame:
    """Percentage-of-volume schedule: trade ``rate`` × forecast market volume per bucket until done.

    Bucket b trades min(rate·V_b, what is left), so the order finishes in the first bucket where
    the cumulative capacity reaches ``quantity`` and later buckets get zero. ``rate`` in (0, 1] is
    the participation of *market* volume (our quantity / forecast market volume in the bucket,
    not our share of the total including us).

    When the forecast volume is insufficient (rate·ΣV < quantity): ``insufficient="raise"``
    raises ``ValueError`` with the shortfall; ``"last"`` puts the remainder in the last bucket,
    breaching the participation cap there, so the schedule still sums to ``quantity``.
    """
    quantity = _scalar("quantity", quantity, lower=0.0)
    rate = _scalar("rate", rate, lower=0.0, strict=True)
    if rate > 1.0:
        raise ValueError(f"rate must be in (0, 1], got {rate}")
    v = as_1d(market_volumes, "market_volumes", allow_nan=False)
    if (v < 0).any():
        raise ValueError(f"market_volumes must be non-negative, got {float(v.min())}")
    capacity = rate * v
    before = np.concatenate(([0.0], np.cumsum(capacity)[:-1]))
    q = np.clip(quantity - before, 0.0, capacity)
    short = quantity - float(capacity.sum())
    if short > 1e-12 * max(quantity, 1.0):
        if insufficient == "raise":
            raise ValueError(
                f"forecast volume is insufficient: rate {rate} of {float(v.sum()):.6g} gives "
                f"{float(capacity.sum()):.6g}, {short:.6g} short of {quantity:.6g}"
            )
        if insufficient != "last":
            raise ValueError(f"insufficient must be 'raise' or 'last', got {insufficient!r}")
        q[-1] += quantity - float(q.sum())
    index = market_volumes.index if isinstance(market_volumes, pd.Series) else pd.RangeIndex(v.size, name="bucket")
    active = np.flatnonzero(q > 0)
    if active.size:
        # The slice that completes the order absorbs the float residue, never an untouched bucket.
        k = int(active[-1]) + 1
        q[:k] = _exact_total(q[:k], quantity, at=k - 1)
    return _schedule(index, q)


def round_schedule(schedule: Any, lot_size: float) -> Any:
    """Round slice quantities to multiples of ``lot_size`` by the largest-remainder method.

    Every slice is floored to whole lots, then the lots still missing from the rounded total go,
    one each, to the slices with the largest fractional remainders (ties to the earlier slice).
    The rounded total is the original total when that is a whole number of lots (to 1e-9 lots);
    otherwise it is floored to whole lots, so rounding never trades more than was asked.
    Accepts a schedule DataFrame (column ``quantity``), a Series or an array; returns the same type.
    """
    lot = _scalar("lot_size", lot_size, lower=0.0, strict=True)
    values = schedule["quantity"] if isinstance(schedule, pd.DataFrame) else schedule
    q = as_1d(values, "schedule quantities", allow_nan=False)
    if (q < 0).any():
        raise ValueError(f"schedule quantities must be non-negative, got {float(q.min())}")
    units = q / lot
    total_units = math.fsum(units.tolist())
    nearest = round(total_units)
    target = nearest if abs(total_units - nearest) <= 1e-9 * max(1.0, total_units) else math.floor(total_units)
    floors = np.floor(units + 1e-9)
    missing = int(target - floors.sum())
    if missing > 0:
        remainders = units - floors
        order = np.argsort(-remainders, kind="stable")
        floors[order[:missing]] += 1.0
    elif missing < 0:
        # Only reachable when the 1e-9 tolerance floored a slice up: take those lots back first.
        order = np.argsort(units - floors, kind="stable")
        order = order[floors[order] > 0][:-missing]
        floors[order] -= 1.0
    rounded: FloatArray = floors * lot
    if isinstance(schedule, pd.DataFrame):
        out = schedule.copy()
        out["quantity"] = rounded
        return out
    if isinstance(schedule, pd.Series):
        return pd.Series(rounded, index=schedule.index, name=schedule.name)
    return rounded
