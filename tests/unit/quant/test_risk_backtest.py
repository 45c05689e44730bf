"""VaR backtests: Kupiec, Christoffersen and the Basel traffic light."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from desk.local import catalogue
from quant import risk


@pytest.fixture(scope="module")
def index_returns() -> pd.Series:
    return catalogue.sp500_index().pct_change().dropna()


def _lr_pof_from_binomial(x: int, n: int, p: float) -> float:
    # The binomial coefficient cancels in the ratio, so log-pmfs give the LR independently.
    return 2.0 * (stats.binom.logpmf(x, n, x / n) - stats.binom.logpmf(x, n, p))


# ---- Kupiec ---------------------------------------------------------------------------------


@given(st.integers(1, 2000), st.data(), st.sampled_from((0.9, 0.95, 0.975, 0.99, 0.999)))
def test_kupiec_matches_a_binomial_likelihood_ratio(n: int, data: st.DataObject, level: float) -> None:
    # Given any breach count (edges included)
    x = data.draw(st.integers(0, n))
    # When the POF test is computed
    res = risk.kupiec_pof(x, n, level)
    # Then the statistic is the binomial log-likelihood ratio and the p-value its χ²(1) tail
    expected = _lr_pof_from_binomial(x, n, 1 - level)
    assert res.statistic == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert res.p_value == pytest.approx(stats.chi2.sf(expected, 1), rel=1e-6, abs=1e-12)


def test_kupiec_zero_and_all_breaches_use_zero_log_zero() -> None:
    # Given 250 days at 99%
    # Then zero breaches give -2·n·ln(0.99) and n breaches give -2·n·ln(0.01)
    assert risk.kupiec_pof(0, 250, 0.99).statistic == pytest.approx(-2 * 250 * np.log(0.99))
    assert risk.kupiec_pof(250, 250, 0.99).statistic == pytest.approx(-2 * 250 * np.log(0.01))
    assert np.isfinite(risk.kupiec_pof(0, 250, 0.99).p_value)


# Kupiec (1995) via Jorion, Value at Risk (3rd ed.), Table 6-2: non-rejection regions of the POF
# test at 95% confidence, as (lowest, highest) accepted breach counts. The 1% / 255-day cell is
# published as "N < 7" with no lower bound, so only its upper end is checked.
PUBLISHED_REGIONS = {
    (0.01, 255): (None, 6),
    (0.01, 510): (2, 10),
    (0.01, 1000): (5, 16),
    (0.025, 255): (3, 11),
    (0.025, 510): (7, 20),
    (0.025, 1000): (16, 35),
    (0.05, 255): (7, 20),
    (0.05, 510): (17, 35),
    (0.05, 1000): (38, 64),
    (0.075, 255): (12, 27),
    (0.075, 510): (28, 50),
    (0.075, 1000): (60, 91),
    (0.10, 255): (17, 35),
    (0.10, 510): (39, 64),
    (0.10, 1000): (82, 119),
}


@pytest.mark.parametrize(("cell", "region"), PUBLISHED_REGIONS.items())
def test_kupiec_reproduces_the_published_non_rejection_regions(
    cell: tuple[float, int], region: tuple[int | None, int]
) -> None:
    (p, n), (low, high) = cell, region
    # When every breach count is tested at the 5% significance level
    accepted = [x for x in range(n + 1) if risk.kupiec_pof(x, n, 1 - p).p_value > 0.05]
    # Then the accepted counts form the published region
    assert max(accepted) == high
    assert accepted == list(range(min(accepted), high + 1))
    if low is not None:
        assert min(accepted) == low


# ---- Christoffersen -------------------------------------------------------------------------


def _rolling_var(returns: pd.Series, window: int = 250, level: float = 0.99) -> pd.Series:
    # Reference VaR forecast: pandas' rolling quantile (linear), known the day before.
    return -returns.rolling(window).quantile(1 - level).shift(1)


def test_christoffersen_independence_is_the_g_test_of_the_transition_table(index_returns: pd.Series) -> None:
    # Given the breaches of a rolling 250-day historical VaR on the S&P 500 (clustered in crises)
    var = _rolling_var(index_returns).dropna()
    hits = (index_returns.loc[var.index] < -var).to_numpy()
    # When the Christoffersen tests are computed
    ind, cc = risk.christoffersen(hits, 0.99)
    # Then the independence LR is the log-likelihood G-test of the 2x2 transition table (scipy)
    prev, cur = hits[:-1], hits[1:]
    table = np.array([[np.sum(~prev & ~cur), np.sum(~prev & cur)], [np.sum(prev & ~cur), np.sum(prev & cur)]])
    g, p_value, dof, _ = stats.chi2_contingency(table, correction=False, lambda_="log-likelihood")
    assert dof == 1
    assert ind.statistic == pytest.approx(g, rel=1e-10)
    assert ind.p_value == pytest.approx(p_value, rel=1e-8)
    # And conditional coverage adds Kupiec's statistic, with two degrees of freedom
    pof = _lr_pof_from_binomial(int(hits.sum()), hits.size, 0.01)
    assert cc.statistic == pytest.approx(pof + g, rel=1e-10)
    assert cc.p_value == pytest.approx(stats.chi2.sf(pof + g, 2), rel=1e-8)
    # And the crisis clustering is detected
    assert ind.p_value < 0.01


def test_christoffersen_handles_no_breach_and_all_breach_series() -> None:
    # Given series with no breach, all breaches and one breach in the last observation
    for hits, pof in (
        (np.zeros(500, dtype=bool), -2 * 500 * np.log(0.99)),
        (np.ones(500, dtype=bool), -2 * 500 * np.log(0.01)),
    ):
        ind, cc = risk.christoffersen(hits, 0.99)
        # Then independence cannot be rejected (LR 0) and coverage is Kupiec's
        assert ind.statistic == pytest.approx(0.0, abs=1e-12)
        assert ind.p_value == pytest.approx(1.0)
        assert cc.statistic == pytest.approx(pof)
    last = np.zeros(300, dtype=bool)
    last[-1] = True
    ind, _ = risk.christoffersen(last, 0.99)
    assert np.isfinite(ind.statistic)


# ---- Basel traffic light and the full backtest ----------------------------------------------


def test_traffic_light_reproduces_the_basel_table() -> None:
    # Basel (1996), Table 2: 250 observations at 99%, cumulative probabilities in percent
    published = [8.11, 28.58, 54.32, 75.81, 89.22, 95.88, 98.63, 99.60, 99.89, 99.97, 99.99]
    zones = ["green"] * 5 + ["yellow"] * 5 + ["red"]
    for x, (cum, zone) in enumerate(zip(published, zones, strict=True)):
        got_zone, got_cum = risk.traffic_light(x, 250, 0.99)
        assert (got_zone, round(100 * got_cum, 2)) == (zone, cum)
    assert risk.traffic_light(30, 250, 0.99)[0] == "red"


def test_traffic_light_scales_with_the_sample_size() -> None:
    # Given 1,000 observations at 99% (10 breaches expected)
    # Then the zone edges move to the binomial 95% / 99.99% points of Binomial(1000, 0.01)
    green_max = int(stats.binom.ppf(0.95, 1000, 0.01)) - 1
    assert risk.traffic_light(green_max, 1000, 0.99)[0] == "green"
    assert risk.traffic_light(green_max + 1, 1000, 0.99)[0] == "yellow"
    assert risk.traffic_light(4, 250, 0.99)[0] == "green"
    assert risk.traffic_light(14, 1000, 0.99)[0] == "green"


def test_var_backtest_on_real_data(index_returns: pd.Series) -> None:
    # Given a rolling 250-day historical VaR forecast with a 251-day warm-up
    var = _rolling_var(index_returns)
    # When it is backtested
    bt = risk.var_backtest(index_returns, var, 0.99)
    # Then the warm-up is dropped and breaches are the days the loss exceeded the forecast
    valid = var.dropna()
    expected_hits = index_returns.loc[valid.index] < -valid
    pd.testing.assert_series_equal(bt.breaches, expected_hits.rename("breach"))
    assert bt.n == len(valid)
    assert bt.count == int(expected_hits.sum())
    assert bt.expected == pytest.approx(0.01 * len(valid))
    # And the tests agree with the stand-alone functions
    assert bt.kupiec == risk.kupiec_pof(bt.count, bt.n, 0.99)
    assert (bt.independence, bt.conditional_coverage) == risk.christoffersen(expected_hits.to_numpy(), 0.99)
    assert (bt.zone, bt.cumulative_probability) == risk.traffic_light(bt.count, bt.n, 0.99)


def test_var_backtest_of_the_2020_year_is_red_for_a_calm_history_var(index_returns: pd.Series) -> None:
    # Given 2020's returns and the 2019 one-year historical VaR held fixed
    var_2019 = risk.var_historical(index_returns["2019"], 0.99)
    r2020 = index_returns["2020"]
    # When 2020 is backtested against it
    bt = risk.var_backtest(r2020, pd.Series(var_2019, index=r2020.index), 0.99)
    # Then the count is the days below -VaR and the COVID crash puts it in the red zone
    assert bt.count == int((r2020 < -var_2019).sum())
    assert bt.count >= 10
    assert bt.zone == "red"


def test_backtest_inputs_are_checked(index_returns: pd.Series) -> None:
    with pytest.raises(ValueError, match="same length"):
        risk.var_backtest(index_returns, np.full(10, 0.02))
    gap = pd.Series(0.02, index=index_returns.index)
    gap.iloc[500] = np.nan
    with pytest.raises(ValueError, match="NaN after its warm-up"):
        risk.var_backtest(index_returns, gap)
    with pytest.raises(ValueError, match="breaches must be"):
        risk.kupiec_pof(11, 10)
    with pytest.raises(ValueError, match="level"):
        risk.kupiec_pof(1, 10, 1.0)
    with pytest.raises(ValueError, match="booleans or 0/1"):
        risk.christoffersen([0, 2, 1])
