"""Limits as data: utilisation tables and the helpers that feed them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from desk.local import catalogue
from quant import risk
from quant.limits import Limit


def test_evaluate_limits_builds_the_utilisation_table() -> None:
    # Given a hard VaR limit and a soft drawdown limit
    limits = [Limit("var_99", "var", 0.02, hard=True), Limit("dd", "drawdown", 0.10, hard=False)]
    # When they are evaluated
    table = risk.evaluate_limits(limits, {"var_99": 0.025, "dd": 0.05, "unused": 1.0})
    # Then each row has the value, threshold, utilisation and the breach flag
    assert list(table.index) == ["var_99", "dd"]
    assert table.loc["var_99", "utilisation"] == pytest.approx(1.25)
    assert bool(table.loc["var_99", "breached"]) and bool(table.loc["var_99", "hard"])
    assert table.loc["dd", "utilisation"] == pytest.approx(0.5)
    assert not bool(table.loc["dd", "breached"]) and not bool(table.loc["dd", "hard"])


def test_a_value_exactly_at_the_threshold_is_not_a_breach_and_magnitudes_count() -> None:
    table = risk.evaluate_limits([Limit("net", "net", 1.0), Limit("at", "var", 0.5)], {"net": -1.5, "at": 0.5})
    assert bool(table.loc["net", "breached"])
    assert not bool(table.loc["at", "breached"])


def test_limits_are_frozen_and_validated() -> None:
    limit = Limit("gross", "gross", 2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        limit.threshold = 3.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="threshold"):
        Limit("x", "var", 0.0)
    with pytest.raises(ValueError, match="threshold"):
        Limit("x", "var", float("nan"))
    with pytest.raises(ValueError, match="no value for limit 'x'"):
        risk.evaluate_limits([Limit("x", "var", 1.0)], {})
    with pytest.raises(ValueError, match="duplicate"):
        risk.evaluate_limits([Limit("x", "var", 1.0), Limit("x", "var", 2.0)], {"x": 0.1})
    with pytest.raises(ValueError, match="not finite"):
        risk.evaluate_limits([Limit("x", "var", 1.0)], {"x": float("nan")})


def test_kelly_limit_is_fractional_mu_over_sigma_squared_on_real_data() -> None:
    # Given the S&P 500's daily mean and volatility
    r = catalogue.sp500_index().pct_change().dropna()
    mu, sigma = r.mean(), r.std()
    # When the half-Kelly leverage is computed from daily and from annualised figures
    daily = risk.kelly_limit(mu, sigma, 0.5)
    annual = risk.kelly_limit(252 * mu, np.sqrt(252) * sigma, 0.5)
    # Then it is 0.5 μ/σ², independent of the period
    assert daily == pytest.approx(0.5 * mu / sigma**2)
    assert annual == pytest.approx(daily)
    with pytest.raises(ValueError, match="sigma"):
        risk.kelly_limit(0.1, 0.0)
    with pytest.raises(ValueError, match="fraction"):
        risk.kelly_limit(0.1, 0.2, 1.5)


def test_drawdown_limit_measures_the_current_drawdown_from_the_peak() -> None:
    # Given the S&P 500 through the COVID trough
    index = catalogue.sp500_index()[:"2020-03-23"]
    # When a 20% drawdown limit is built
    limits, values = risk.drawdown_limit(index, 0.20)
    table = risk.evaluate_limits(limits, values)
    # Then the drawdown is 1 - trough / peak and breaches the limit
    assert values["drawdown"] == pytest.approx(1 - index["2020-03-23"] / index.max())
    assert bool(table.loc["drawdown", "breached"])
    with pytest.raises(ValueError, match="positive"):
        risk.drawdown_limit([1.0, 0.0], 0.2)


def test_exposure_limits_value_gross_net_and_each_position() -> None:
    # Given a long/short book on 1,000,000 of equity
    positions = pd.Series({"AAPL": 600_000.0, "XOM": -300_000.0, "JPM": 200_000.0})
    # When exposure limits are built and evaluated
    limits, values = risk.exposure_limits(positions, 1_000_000.0, gross=1.0, net=0.8, per_symbol=0.5)
    table = risk.evaluate_limits(limits, values)
    # Then gross, net and per-symbol exposures are fractions of equity
    assert values["gross"] == pytest.approx(1.1)
    assert values["net"] == pytest.approx(0.5)
    assert values["position:XOM"] == pytest.approx(0.3)
    assert table["breached"].to_dict() == {
        "gross": True,
        "net": False,
        "position:AAPL": True,
        "position:XOM": False,
        "position:JPM": False,
    }
    # And per-symbol caps may differ by symbol, but every held symbol needs one
    _, per = risk.exposure_limits(positions, 1e6, 2.0, 1.0, {"AAPL": 0.7, "XOM": 0.5, "JPM": 0.5})
    assert per["position:AAPL"] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="no per-symbol limit for 'JPM'"):
        risk.exposure_limits(positions, 1e6, 2.0, 1.0, {"AAPL": 0.7, "XOM": 0.5})
    with pytest.raises(ValueError, match="equity"):
        risk.exposure_limits(positions, 0.0, 2.0, 1.0, 0.5)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=10), st.floats(1e3, 1e7))
def test_gross_exposure_bounds_net_and_every_position(notional: list[float], equity: float) -> None:
    positions = pd.Series(notional, index=[f"S{i}" for i in range(len(notional))])
    _, values = risk.exposure_limits(positions, equity, 1.0, 1.0, 1.0)
    assert abs(values["net"]) <= values["gross"] + 1e-12
    assert all(values[f"position:{s}"] <= values["gross"] + 1e-12 for s in positions.index)
