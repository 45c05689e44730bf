"""quant.signals pairs trading: Engle-Granger vs statsmodels on real pairs, half-life, z-score, state machine."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from statsmodels.tsa.adfvalues import mackinnoncrit, mackinnonp
from statsmodels.tsa.stattools import adfuller, coint
from threadpoolctl import threadpool_limits

from desk.local import catalogue
from quant.signals import (
    PairsStrategy,
    StrategyData,
    engle_granger,
    half_life,
    mackinnon_critical_values,
    mackinnon_pvalue,
    pairs_positions,
    rolling_zscore,
    scan_pairs,
)

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _one_blas_thread() -> object:
    # Two shared cores: a multi-threaded BLAS spins against other jobs and slows statsmodels 20x.
    with threadpool_limits(1):
        yield


def _equity_pair(a: str, b: str, last: int | None = None) -> tuple[pd.Series, pd.Series]:
    px = np.log(catalogue.sp500_stocks()[[a, b]])
    if last is not None:
        px = px.iloc[-last:]
    return px[a], px[b]


def _crypto_pair() -> tuple[pd.Series, pd.Series]:
    daily = catalogue.bitstamp_daily()
    both = pd.concat([daily["BTC"]["close"], daily["LTC"]["close"]], axis=1, keys=["BTC", "LTC"]).dropna()
    return np.log(both["BTC"]), np.log(both["LTC"])


PAIRS = {
    "KO/PEP": lambda: _equity_pair("KO", "PEP"),
    "XOM/CVX": lambda: _equity_pair("XOM", "CVX"),
    "XOM/CVX 5y": lambda: _equity_pair("XOM", "CVX", last=1260),
    "BTC/LTC": _crypto_pair,
}


@pytest.mark.parametrize("pair", list(PAIRS))
@pytest.mark.parametrize(
    ("trend", "autolag"), [("c", "aic"), ("c", "bic"), ("c", None), ("ct", "aic"), ("n", "t-stat")]
)
def test_engle_granger_equals_statsmodels_coint_on_real_pairs(pair: str, trend: str, autolag: str | None) -> None:
    # Given a real pair of log prices
    y, x = PAIRS[pair]()
    # When both implementations test it
    ours = engle_granger(y, x, trend=trend, autolag=autolag)
    stat, pvalue, crit = coint(y, x, trend=trend, autolag=autolag)[:3]
    # Then the statistic, the p-value and the critical values agree to rounding
    assert ours.adf_stat == pytest.approx(stat, rel=1e-9, abs=1e-12)
    assert ours.pvalue == pytest.approx(pvalue, rel=1e-9, abs=1e-12)
    expected_crit = np.asarray(crit, dtype=float)
    np.testing.assert_allclose(list(ours.critical_values.values()), expected_crit, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("pair", ["KO/PEP", "BTC/LTC"])
def test_engle_granger_lag_and_hedge_ratio_match_the_two_step_procedure(pair: str) -> None:
    # Given a real pair
    y, x = PAIRS[pair]()
    # When ours runs, and statsmodels' adfuller runs on an OLS residual computed independently
    ours = engle_granger(y, x)
    design = np.column_stack([x.to_numpy(), np.ones(len(x))])
    beta = np.linalg.lstsq(design, y.to_numpy(), rcond=None)[0]
    adf = adfuller(y.to_numpy() - design @ beta, regression="n", autolag="aic", result_object=False)
    # Then the hedge ratio, the intercept and the number of lags are statsmodels'
    assert ours.hedge_ratio == pytest.approx(beta[0], rel=1e-10)
    assert ours.intercept == pytest.approx(beta[1], rel=1e-10)
    assert ours.lags == adf[2]
    assert isinstance(ours.spread, pd.Series)
    assert ours.spread.index.equals(y.index)


@given(st.floats(min_value=-25.0, max_value=3.0, allow_nan=False), st.sampled_from(["n", "c", "ct", "ctt"]))
def test_mackinnon_pvalue_equals_statsmodels_everywhere(stat: float, trend: str) -> None:
    # Given any statistic; When both compute MacKinnon's (1994) p-value for N = 2; Then they agree
    assert mackinnon_pvalue(stat, trend) == pytest.approx(mackinnonp(stat, regression=trend, N=2), abs=1e-12)


@pytest.mark.parametrize("trend", ["c", "ct", "ctt"])
@pytest.mark.parametrize("nobs", [50, 500, 8312])
def test_mackinnon_critical_values_equal_statsmodels(trend: str, nobs: int) -> None:
    ours = list(mackinnon_critical_values(nobs, trend).values())
    np.testing.assert_allclose(ours, mackinnoncrit(N=2, regression=trend, nobs=nobs), rtol=1e-12)


def test_mackinnon_pvalue_is_monotone_in_the_statistic() -> None:
    # Given a fine grid of statistics; Then a more negative statistic never has a larger p-value
    grid = np.linspace(-20.0, 2.0, 4001)
    for trend in ("n", "c", "ct", "ctt"):
        p = np.array([mackinnon_pvalue(s, trend) for s in grid])
        assert (np.diff(p) >= -1e-12).all()
        assert p[0] < 1e-6 and p[-1] > 0.99


def test_engle_granger_finds_a_simulated_cointegrated_pair_and_rejects_independent_walks() -> None:
    # Given x a random walk, y = 0.7 x + stationary AR(1) noise, and z an independent random walk
    rng = np.random.default_rng(7)
    n = 1500
    x = np.cumsum(rng.normal(size=n))
    u = np.zeros(n)
    for t in range(1, n):
        u[t] = 0.8 * u[t - 1] + rng.normal()
    y = 0.7 * x + 2.0 + u
    z = np.cumsum(rng.normal(size=n))
    # When tested
    good = engle_granger(y, x)
    bad = engle_granger(z, x)
    # Then the pair is cointegrated with the right hedge ratio, the independent walks are not
    assert good.pvalue < 0.01 and good.hedge_ratio == pytest.approx(0.7, abs=0.02)
    assert bad.pvalue > 0.05


def test_engle_granger_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        engle_granger(np.arange(30.0), np.arange(31.0))
    with pytest.raises(ValueError, match="NaN"):
        engle_granger(np.r_[np.arange(29.0), np.nan], np.arange(30.0))
    with pytest.raises(ValueError, match="trend"):
        engle_granger(np.arange(30.0), np.arange(30.0) ** 1.5, trend="x")


@pytest.mark.parametrize("theta", [0.02, 0.1, 0.3])
def test_half_life_recovers_a_simulated_ou_process(theta: float) -> None:
    # Given an Euler-discretised OU process Δs = θ(μ - s) + σ ε, whose half-life is ln 2 / θ
    rng = np.random.default_rng(11)
    n = 40_000
    s = np.empty(n)
    s[0] = 5.0
    eps = rng.normal(scale=0.5, size=n)
    for t in range(1, n):
        s[t] = s[t - 1] + theta * (5.0 - s[t - 1]) + eps[t]
    # When the half-life is estimated; Then it is within a few percent of ln 2 / θ
    assert half_life(s) == pytest.approx(math.log(2.0) / theta, rel=0.08)


def test_half_life_is_infinite_for_an_explosive_series() -> None:
    s = 1.01 ** np.arange(200.0)
    assert half_life(s) == math.inf


def test_rolling_zscore_matches_pandas_and_is_causal() -> None:
    # Given a real spread
    y, x = PAIRS["KO/PEP"]()
    spread = engle_granger(y, x).spread
    # When z-scored with a 60-bar window
    z = rolling_zscore(spread, 60)
    # Then it is the pandas formula (ddof = 1), keeps the index, and bar t ignores later bars
    expected = (spread - spread.rolling(60).mean()) / spread.rolling(60).std()
    pd.testing.assert_series_equal(z, expected.rename("zscore"), rtol=1e-9)
    head = rolling_zscore(spread.iloc[:1000], 60)
    pd.testing.assert_series_equal(head, z.iloc[:1000], rtol=1e-12)
    assert z.iloc[:59].isna().all()


def test_pairs_positions_follow_the_rules_on_a_hand_made_path() -> None:
    # Given a z path that enters short, exits, enters long, stops out, re-arms and re-enters
    z = np.array([0.0, 2.5, 1.0, 0.4, -2.1, -3.0, -4.5, -3.0, -2.5, -0.3, -2.2, np.nan, 0.0])
    # When run through the state machine with entry 2, exit 0.5, stop 4
    pos = pairs_positions(z, entry=2.0, exit=0.5, stop=4.0)
    # Then (hand-derived): short at 2.5, held at 1.0, out at 0.4, long at -2.1, held at -3.0,
    # stopped at -4.5 and flat through -3.0, -2.5 until |z| < 0.5, then long again at -2.2
    np.testing.assert_array_equal(pos, [0, -1, -1, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0])


def test_pairs_positions_flip_on_an_overshoot_through_the_band() -> None:
    pos = pairs_positions(np.array([-2.5, 2.5, 0.0]), entry=2.0, exit=0.5, stop=4.0)
    np.testing.assert_array_equal(pos, [1, -1, 0])


def test_pairs_positions_validate_thresholds() -> None:
    with pytest.raises(ValueError, match="exit < entry < stop"):
        pairs_positions(np.zeros(5), entry=2.0, exit=2.5, stop=4.0)


@given(st.lists(st.floats(min_value=-6.0, max_value=6.0, allow_nan=False), min_size=1, max_size=200))
def test_pairs_positions_invariants(values: list[float]) -> None:
    z = np.asarray(values)
    pos = pairs_positions(z, entry=2.0, exit=0.5, stop=4.0)
    prev = np.r_[0.0, pos[:-1]]
    # Positions are -1, 0 or +1
    assert set(np.unique(pos)) <= {-1.0, 0.0, 1.0}
    # Never in a position beyond the stop
    assert (pos[np.abs(z) > 4.0] == 0.0).all()
    # A new position is opened only beyond the entry threshold, on the correct side
    opened = (pos != 0.0) & (pos != prev)
    assert (np.abs(z[opened]) > 2.0).all()
    assert (np.sign(z[opened]) == -pos[opened]).all()
    # A position held over from the last bar is never inside the exit band
    kept = (pos != 0.0) & (pos == prev)
    assert (np.abs(z[kept]) >= 0.5).all()


def test_scan_pairs_ranks_by_pvalue_and_agrees_with_engle_granger() -> None:
    # Given four real stocks over the last five years
    px = catalogue.sp500_stocks()[["KO", "PEP", "XOM", "CVX"]].iloc[-1260:]
    # When scanned
    table = scan_pairs(px)
    # Then every pair appears once, sorted by p-value, each row matches a direct test
    assert len(table) == 6
    assert table["pvalue"].is_monotonic_increasing
    row = table[(table["y"] == "XOM") & (table["x"] == "CVX")].iloc[0]
    direct = engle_granger(np.log(px["XOM"]), np.log(px["CVX"]))
    assert row["pvalue"] == pytest.approx(direct.pvalue, rel=1e-12)
    assert row["half_life"] == pytest.approx(half_life(direct.spread), rel=1e-12)
    assert len(scan_pairs(px, max_pvalue=table["pvalue"].iloc[1])) == 2


def test_pairs_strategy_targets_are_causal_hedged_and_flat_in_formation() -> None:
    # Given XOM/CVX closes
    px = catalogue.sp500_stocks()[["XOM", "CVX"]].iloc[-1500:]
    strat = PairsStrategy("XOM", "CVX", formation=500, window=40)
    # When targets are computed on the whole sample and on a truncated one
    full = strat.target_positions(px)
    short = strat.target_positions(px.iloc[:1000])
    # Then: flat during formation, trading afterwards, hedged with gross exposure 1, and causal
    assert (full.iloc[:500] == 0.0).all().all()
    active = full.abs().sum(axis=1) > 0
    assert active.sum() > 20
    np.testing.assert_allclose(full.abs().sum(axis=1)[active], 1.0)
    assert (np.sign(full["XOM"][active]) == -np.sign(full["CVX"][active])).all()
    pd.testing.assert_frame_equal(short, full.iloc[:1000])


def test_pairs_strategy_is_gated_by_regime_and_checks_columns() -> None:
    px = catalogue.sp500_stocks()[["XOM", "CVX"]].iloc[-1500:]
    crisis = pd.Series("CRISIS", index=px.index)
    strat = PairsStrategy("XOM", "CVX", formation=500, window=40)
    assert (strat.target_positions(StrategyData(px, regimes=crisis)) == 0.0).all().all()
    with pytest.raises(ValueError, match="not in prices"):
        PairsStrategy("XOM", "KO").target_positions(px)
