"""quant.execution: Almgren–Chriss against the paper and a numerical optimiser; TWAP/VWAP/POV schedules."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize

from desk.local import catalogue
from quant.execution import almgren_chriss, almgren_chriss_frontier, pov, round_schedule, twap, vwap

# Almgren & Chriss (2000), section 3.4 sample: 10^6 shares at S0 = 50, 30% annual vol ->
# sigma = 0.95 $/share/day^1/2, spread 1/8 -> epsilon = 1/16, eta = 2.5e-6, gamma = 2.5e-7, T = N = 5 days.
PAPER = {"X": 1e6, "T": 5.0, "N": 5, "sigma": 0.95, "eta": 2.5e-6, "epsilon": 0.0625, "gamma": 2.5e-7}


def _numerical(X: float, T: float, N: int, sigma: float, eta: float, epsilon: float, gamma: float, lam: float):
    """Minimise E + lam*V over the N-1 free holdings with BFGS (the reference for the closed form)."""
    tau = T / N
    eta_t = eta - 0.5 * gamma * tau

    def utility(y: np.ndarray) -> tuple[float, np.ndarray]:
        x = np.concatenate(([1.0], y, [0.0])) * X
        n = x[:-1] - x[1:]
        u = 0.5 * gamma * X**2 + epsilon * np.abs(n).sum() + eta_t / tau * (n**2).sum()
        u += lam * sigma**2 * tau * (x[1:] ** 2).sum()
        dn = epsilon * np.sign(n) + 2 * eta_t / tau * n  # dU/dn_k
        # x_k enters n_k with sign -1 and n_{k+1} with sign +1
        grad = dn[1:] - dn[:-1] + 2 * lam * sigma**2 * tau * x[1:-1]
        scale = 1.0 / (X * X)
        return u * scale, grad * X * scale

    y0 = np.linspace(1.0, 0.0, N + 1)[1:-1]
    res = minimize(utility, y0, jac=True, method="BFGS", options={"gtol": 1e-13, "maxiter": 10_000})
    x = np.concatenate(([1.0], res.x, [0.0])) * X
    return x, res.fun * X * X


def _spy_problem() -> dict[str, float]:
    """An AC problem calibrated on real SPY 2017-2018 data with the paper's rules of thumb."""
    spy = catalogue.spy_2017_2018()
    sigma = float(spy["close"].diff().std(ddof=1))  # $/share/day^1/2
    adv = float(spy["volume"].mean())
    spread = 0.01  # one tick, SPY trades at a one-cent spread
    return {
        "X": 0.2 * adv,
        "T": 1.0,
        "N": 13,
        "sigma": sigma,
        "eta": spread / (0.01 * adv),  # the paper: trading 1% of daily volume costs one spread
        "epsilon": spread / 2,
        "gamma": spread / (0.1 * adv),  # the paper: 10% of daily volume moves the price one spread
    }


def test_naive_linear_schedule_reproduces_the_paper_numbers() -> None:
    # Given the paper's sample problem and lambda = 0 (the linear, TWAP-like trajectory)
    result = almgren_chriss(**PAPER, lam=0.0)
    print(f"naive E = {result.expected_cost:,.0f}, V = {result.variance:.4g}")
    # Then the holdings fall linearly and E, V are the paper's $662,500 and ~1.08e12 $^2
    np.testing.assert_allclose(result.holdings, np.linspace(1e6, 0.0, 6), rtol=0, atol=1e-6)
    assert result.expected_cost == pytest.approx(662_500.0, rel=1e-12)
    assert round(result.variance / 1e12, 2) == 1.08
    assert result.kappa == 0.0


@pytest.mark.parametrize("lam", [1e-6, 2e-6, 1e-5, 2e-8])
def test_closed_form_matches_numerical_minimisation_on_the_paper_problem(lam: float) -> None:
    # Given the paper's problem and a risk aversion lambda
    result = almgren_chriss(**PAPER, lam=lam)
    # When E + lam*V is minimised numerically over the free holdings
    x_num, u_num = _numerical(**PAPER, lam=lam)
    # Then the closed-form trajectory and its utility are the optimum
    np.testing.assert_allclose(result.holdings, x_num, rtol=0, atol=1e-6 * PAPER["X"])
    assert result.utility == pytest.approx(u_num, rel=1e-10)
    assert result.utility <= u_num * (1 + 1e-12)


def test_closed_form_matches_numerical_minimisation_on_real_spy_calibration() -> None:
    # Given a problem calibrated on real SPY data (sigma, ADV) and several risk aversions
    prob = _spy_problem()
    for lam in (1e-9, 1e-8, 5e-8):
        result = almgren_chriss(**prob, lam=lam)
        x_num, u_num = _numerical(**prob, lam=lam)
        # Then the closed form and the optimiser agree
        np.testing.assert_allclose(result.holdings, x_num, rtol=0, atol=1e-6 * prob["X"])
        assert result.utility == pytest.approx(u_num, rel=1e-9)


@pytest.mark.parametrize("lam", [1e-8, 1e-6, 2e-6, 1e-4])
def test_trajectory_and_moments_match_the_papers_closed_form_expressions(lam: float) -> None:
    # Given the paper's problem
    r = almgren_chriss(**PAPER, lam=lam)
    X, T, N, sigma = PAPER["X"], PAPER["T"], PAPER["N"], PAPER["sigma"]
    tau, k = T / N, r.kappa
    # Then kappa solves (2/tau^2)(cosh(kappa tau) - 1) = kappa_tilde^2 = lam sigma^2 / eta_tilde
    eta_t = PAPER["eta"] - 0.5 * PAPER["gamma"] * tau
    assert r.kappa_tilde**2 == pytest.approx(lam * sigma**2 / eta_t, rel=1e-12)
    assert 2 / tau**2 * (math.cosh(k * tau) - 1) == pytest.approx(r.kappa_tilde**2, rel=1e-9)
    # And the trade list is the paper's n_j = 2 sinh(k tau/2)/sinh(k T) cosh(k (T - t_{j-1/2})) X
    t_half = (np.arange(1, N + 1) - 0.5) * tau
    n_paper = 2 * math.sinh(0.5 * k * tau) / math.sinh(k * T) * np.cosh(k * (T - t_half)) * X
    np.testing.assert_allclose(r.trades, n_paper, rtol=1e-10)
    # And E, V equal the paper's closed forms for the optimal strategy
    e_paper = 0.5 * PAPER["gamma"] * X**2 + PAPER["epsilon"] * X
    e_paper += (
        eta_t
        * X**2
        * math.tanh(0.5 * k * tau)
        * (tau * math.sinh(2 * k * T) + 2 * T * math.sinh(k * tau))
        / (2 * tau**2 * math.sinh(k * T) ** 2)
    )
    v_paper = (
        0.5
        * sigma**2
        * X**2
        * (tau * math.sinh(k * T) * math.cosh(k * (T - tau)) - T * math.sinh(k * tau))
        / (math.sinh(k * T) ** 2 * math.sinh(k * tau))
    )
    assert r.expected_cost == pytest.approx(e_paper, rel=1e-9)
    assert r.variance == pytest.approx(v_paper, rel=1e-9)


def test_frontier_is_monotone_and_matches_single_solves() -> None:
    # Given 200 risk aversions from 0 to very risk-averse
    lams = np.concatenate(([0.0], np.logspace(-10, -2, 199)))
    frontier = almgren_chriss_frontier(**PAPER, lams=lams)
    # Then E rises and V falls strictly along the frontier
    assert (np.diff(frontier["E"]) > 0).all()
    assert (np.diff(frontier["V"]) < 0).all()
    # And each row is the single-lambda solution
    for i in (0, 50, 120, 199):
        r = almgren_chriss(**PAPER, lam=float(lams[i]))
        assert frontier["E"].iloc[i] == pytest.approx(r.expected_cost, rel=1e-12)
        assert frontier["V"].iloc[i] == pytest.approx(r.variance, rel=1e-12)
    # And the infinitely risk-averse limit sells everything in the first period (V -> 0)
    assert frontier["V"].iloc[-1] < 1e-6 * frontier["V"].iloc[0]


@given(
    lam=st.floats(1e-9, 1e-3),
    sigma=st.floats(0.05, 5.0),
    N=st.integers(1, 40),
    noise=st.lists(st.floats(-0.2, 0.2), min_size=39, max_size=39),
)
def test_optimal_trajectory_beats_any_other_trajectory(lam: float, sigma: float, N: int, noise: list[float]) -> None:
    # Given an optimal trajectory and a perturbed (feasible, monotone) one
    params = dict(PAPER, sigma=sigma, N=N)
    r = almgren_chriss(**params, lam=lam)
    other = r.holdings.copy()
    other[1:-1] *= 1 + np.asarray(noise[: N - 1])
    other[1:-1] = np.minimum.accumulate(np.clip(other[1:-1], 0, params["X"]))
    tau = params["T"] / N
    n = -np.diff(other)
    e = 0.5 * params["gamma"] * params["X"] ** 2 + params["epsilon"] * np.abs(n).sum()
    e += r.eta_tilde / tau * (n**2).sum()
    v = sigma**2 * tau * (other[1:] ** 2).sum()
    # Then no other trajectory has a lower E + lam V, and holdings fall monotonically to zero
    assert r.utility <= (e + lam * v) * (1 + 1e-12)
    assert (np.diff(r.holdings) <= 0).all()
    assert r.holdings[0] == params["X"]
    assert r.holdings[-1] == 0.0


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"N": 0}, "N must be >= 1"),
        ({"N": 2.5}, "N must be an integer"),
        ({"lam": -1e-6}, "lam must be >= 0"),
        ({"X": -1.0}, "X must be > 0"),
        ({"T": 0.0}, "T must be > 0"),
        ({"sigma": float("nan")}, "sigma must be finite"),
        ({"gamma": 1.0}, "eta - gamma"),
    ],
)
def test_almgren_chriss_rejects_bad_input(override: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        almgren_chriss(**(PAPER | {"lam": 1e-6} | override))


def test_frontier_rejects_negative_lambda() -> None:
    with pytest.raises(ValueError, match="lams must be >= 0"):
        almgren_chriss_frontier(**PAPER, lams=[1e-6, -1e-6])


# ---------------------------------------------------------------- schedules


def _exact(q: pd.Series, total: float) -> bool:
    return math.fsum(q.tolist()) == total and float(np.sum(q.to_numpy())) == total


def test_twap_slices_are_equal_timed_and_sum_exactly() -> None:
    # Given 1 BTC over a 6.5-hour session in 7 slices (1/7 is not a float)
    sched = twap(1.0, "2024-08-08 13:30", "2024-08-08 20:00", 7)
    # Then slices start every 390/7 minutes (to the index's resolution), are equal, and sum exactly to 1
    assert len(sched) == 7
    assert sched.index[0] == pd.Timestamp("2024-08-08 13:30")
    steps = np.diff(sched.index.to_numpy()).astype("timedelta64[ns]").astype(np.int64)
    np.testing.assert_allclose(steps, 390 / 7 * 60e9, rtol=0, atol=1e3)
    assert sched.index[-1] + pd.Timedelta(minutes=390 / 7) - pd.Timestamp("2024-08-08 20:00") < pd.Timedelta("1ms")
    np.testing.assert_allclose(sched["quantity"], 1 / 7, rtol=1e-14)
    assert _exact(sched["quantity"], 1.0)


@given(q=st.floats(1e-6, 1e9), n=st.integers(1, 500))
def test_twap_sums_exactly_for_any_quantity(q: float, n: int) -> None:
    sched = twap(q, 0.0, 1.0, n)
    assert _exact(sched["quantity"], q)
    assert (sched["quantity"] >= 0).all()


@pytest.mark.parametrize("q", [5e-324, 1e-310, 2.0**-1022, 1e-300])
def test_twap_sums_exactly_for_subnormal_and_tiny_quantities(q: float) -> None:
    # The grid is ulp(q): below 2**-1022 that is the smallest subnormal, not an underflow to zero
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a division by a zero grid would warn
        sched = twap(q, 0.0, 1.0, 3)
    assert _exact(sched["quantity"], q)
    assert (sched["quantity"] >= 0).all()


def test_vwap_follows_the_real_intraday_volume_profile() -> None:
    # Given the real Coinbase BTC-USD hourly volume, averaged by hour of day (a VWAP forecast curve)
    hourly = catalogue.coinbase_btcusd_hourly()
    profile = hourly["volume"].groupby(hourly.index.hour).mean()
    # When 12.5 BTC is scheduled along it
    sched = vwap(12.5, profile)
    # Then each hour gets its share of the day's volume and the slices sum exactly to 12.5
    expected = 12.5 * profile / profile.sum()
    np.testing.assert_allclose(sched["quantity"].to_numpy(), expected.to_numpy(), rtol=1e-12)
    assert list(sched.index) == list(range(24))
    assert _exact(sched["quantity"], 12.5)


@given(
    q=st.floats(1e-3, 1e7),
    profile=st.lists(st.floats(0.0, 1e6), min_size=1, max_size=60).filter(lambda v: sum(v) > 0),
)
def test_vwap_sums_exactly_and_is_proportional(q: float, profile: list[float]) -> None:
    sched = vwap(q, np.asarray(profile))
    assert _exact(sched["quantity"], q)
    np.testing.assert_allclose(sched["quantity"], q * np.asarray(profile) / sum(profile), rtol=1e-9, atol=1e-9 * q)


def test_pov_participates_in_real_hourly_volume_until_done() -> None:
    # Given the real hourly volumes of one Coinbase day and a 10% participation rate
    hourly = catalogue.coinbase_btcusd_hourly()
    day = hourly.loc["2019-06-03", "volume"]
    quantity = 0.35 * 0.1 * float(day.sum())
    # When the order is scheduled
    sched = pov(quantity, day, 0.1)
    q = sched["quantity"]
    # Then no hour exceeds 10% of its volume, the order finishes early, later hours are empty,
    # and the slices sum exactly
    assert (q <= 0.1 * day + 1e-9).all()
    active = np.flatnonzero(q.to_numpy() > 0)
    assert active[-1] < len(day) - 1
    assert (q.iloc[active[-1] + 1 :] == 0).all()
    np.testing.assert_allclose(q.iloc[: active[-1]], 0.1 * day.iloc[: active[-1]], rtol=1e-12)
    assert _exact(q, quantity)
    assert list(sched.index) == list(day.index)


def test_pov_insufficient_volume_raises_or_goes_to_the_last_bucket() -> None:
    # Given forecast volume 10 per bucket for 3 buckets and a 20% rate (capacity 6)
    vol = np.array([10.0, 10.0, 10.0])
    # Then asking for 8 raises by default, saying how much is missing
    with pytest.raises(ValueError, match="2 short of 8"):
        pov(8.0, vol, 0.2)
    # And "last" puts the missing 2 into the last bucket
    sched = pov(8.0, vol, 0.2, insufficient="last")
    np.testing.assert_allclose(sched["quantity"], [2.0, 2.0, 4.0])
    assert _exact(sched["quantity"], 8.0)


@given(
    q=st.floats(1e-3, 1e6),
    vols=st.lists(st.floats(0.0, 1e6), min_size=1, max_size=40),
    rate=st.floats(0.01, 1.0),
)
def test_pov_sums_exactly_when_volume_suffices(q: float, vols: list[float], rate: float) -> None:
    v = np.asarray(vols)
    if rate * v.sum() < q * (1 + 1e-9):
        with pytest.raises(ValueError, match="insufficient"):
            pov(q, v, rate)
        return
    sched = pov(q, v, rate)
    assert _exact(sched["quantity"], q)
    assert (sched["quantity"].to_numpy() <= rate * v * (1 + 1e-12) + 1e-9).all()


def test_round_schedule_largest_remainder_hand_case() -> None:
    # Given 10 lots split in three (3.333.. each) and then 1.4/2.3/3.3 (7 lots)
    # Then the leftover lot goes to the earliest of the equal remainders, then to the largest one
    np.testing.assert_array_equal(round_schedule(np.full(3, 10 / 3), 1.0), [4.0, 3.0, 3.0])
    np.testing.assert_array_equal(round_schedule(np.array([1.4, 2.3, 3.3]), 1.0), [2.0, 2.0, 3.0])
    # And a total that is not whole lots is floored, never rounded up
    assert round_schedule(np.array([0.6, 0.6]), 1.0).sum() == 1.0


@given(lots=st.integers(0, 10_000), weights=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=50))
def test_round_schedule_preserves_whole_lot_totals(lots: int, weights: list[float]) -> None:
    # Given a VWAP-style split of a whole number of 0.001 lots
    lot = 0.001
    w = np.asarray(weights) + 1e-3
    sched = vwap(lots * lot, w)
    # When rounded to lots
    rounded = round_schedule(sched, lot)
    q = rounded["quantity"].to_numpy()
    # Then the lot count is preserved, every slice moved by less than one lot, and all are whole lots
    assert round(q.sum() / lot) == lots
    assert (np.abs(q - sched["quantity"].to_numpy()) < lot * (1 + 1e-9)).all()
    np.testing.assert_allclose(q / lot, np.round(q / lot), atol=1e-6)
    assert list(rounded.index) == list(sched.index)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: twap(-1.0, 0, 1, 3), "quantity must be >= 0"),
        (lambda: twap(1.0, 0, 1, 0), "n_slices must be >= 1"),
        (lambda: twap(1.0, 5, 1, 3), "end must be after start"),
        (lambda: vwap(1.0, [1.0, -1.0]), "non-negative"),
        (lambda: vwap(1.0, [0.0, 0.0]), "sums to zero"),
        (lambda: vwap(1.0, [1.0, float("nan")]), "NaN"),
        (lambda: pov(1.0, [1.0], 1.5), "rate must be in"),
        (lambda: pov(1.0, [1.0], 0.0), "rate must be > 0"),
        (lambda: round_schedule(np.array([1.0]), 0.0), "lot_size must be > 0"),
        (lambda: round_schedule(np.array([-1.0]), 1.0), "non-negative"),
    ],
)
def test_schedules_reject_bad_input(call, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        call()
