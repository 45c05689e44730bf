"""quant.signals strategies: the Strategy interface, regime gate, and each strategy's rule."""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import given
from hypothesis import strategies as st

from desk.local import catalogue
from quant.signals import (
    CRISIS,
    RANGING,
    TRENDING,
    MACrossoverStrategy,
    MeanReversionStrategy,
    MomentumStrategy,
    PairsStrategy,
    Strategy,
    StrategyData,
    VolBreakoutStrategy,
    VolTargetStrategy,
)

pytestmark = pytest.mark.unit


class Ones(Strategy):
    """Always fully long every instrument: isolates the regime gate."""

    name = "ones"

    def __init__(self, regimes: Any) -> None:
        self.regimes = regimes

    @property
    def params(self) -> Mapping[str, Any]:
        return {}

    def raw_targets(self, data: StrategyData) -> pd.DataFrame:
        return pd.DataFrame(1.0, index=data.prices.index, columns=data.prices.columns)


class Label(StrEnum):
    TRENDING = "trending"
    CRISIS = "crisis"


def _prices() -> pd.DataFrame:
    return catalogue.sp500_stocks()[["KO", "PEP", "XOM"]].iloc[-1500:]


def test_regime_gate_zeroes_targets_outside_the_strategy_regimes() -> None:
    # Given labels per bar mixing spellings, an Enum member and a missing label
    px = _prices().iloc[:6]
    labels = pd.Series(["TRENDING", "trending", Label.TRENDING, "CRISIS", None, "RANGING"], index=px.index)
    # When a TRENDING-only strategy is gated
    out = Ones(frozenset({TRENDING})).target_positions(StrategyData(px, regimes=labels))
    # Then only the trending bars keep their targets
    np.testing.assert_array_equal(out.iloc[:, 0].to_numpy(), [1, 1, 1, 0, 0, 0])
    # And without labels, or with regimes=None, the gate is open
    assert (Ones(frozenset({TRENDING})).target_positions(px) == 1.0).all().all()
    assert (Ones(None).target_positions(StrategyData(px, regimes=labels)) == 1.0).all().all()


def test_regime_gate_accepts_one_label_per_instrument() -> None:
    px = _prices().iloc[:3]
    labels = pd.DataFrame(
        [["RANGING", "CRISIS", "RANGING"], ["CRISIS", "RANGING", "RANGING"], ["RANGING"] * 3],
        index=px.index,
        columns=px.columns,
    )
    out = Ones(frozenset({RANGING})).target_positions(StrategyData(px, regimes=labels))
    np.testing.assert_array_equal(out.to_numpy(), (labels == "RANGING").to_numpy().astype(float))


def test_every_strategy_is_flat_in_crisis_by_default() -> None:
    px = _prices()
    crisis = pd.Series(Label.CRISIS, index=px.index)
    strategies: list[Strategy] = [
        MomentumStrategy(60, 5),
        MeanReversionStrategy(20),
        MACrossoverStrategy(10, 50),
        VolTargetStrategy(),
        VolBreakoutStrategy(),
        PairsStrategy("KO", "PEP", formation=300, window=40),
    ]
    for strat in strategies:
        assert CRISIS not in (strat.regimes or frozenset())
        assert (strat.target_positions(StrategyData(px, regimes=crisis)) == 0.0).all().all(), strat.name
        assert strat.params and repr(strat).startswith(type(strat).__name__)


STRATEGIES = {
    "momentum": lambda: MomentumStrategy(60, 5),
    "mean_reversion": lambda: MeanReversionStrategy(20, 1.5),
    "ma_crossover": lambda: MACrossoverStrategy(10, 50),
    "vol_target": lambda: VolTargetStrategy(0.1, 20, 1.5),
    "vol_breakout": lambda: VolBreakoutStrategy(20, 10),
    "pairs": lambda: PairsStrategy("KO", "PEP", formation=300, window=40),
}


@pytest.mark.parametrize("name", list(STRATEGIES))
@given(cut=st.integers(min_value=320, max_value=1499))
def test_targets_never_use_later_bars(name: str, cut: int) -> None:
    # Given real prices; When targets are computed on a prefix and on the full sample
    px = _prices()
    strat = STRATEGIES[name]()
    full = strat.target_positions(px)
    prefix = strat.target_positions(px.iloc[:cut])
    # Then the prefix's targets are the full sample's: bar t sees nothing after t
    pd.testing.assert_frame_equal(prefix, full.iloc[:cut], rtol=1e-10)
    assert full.index.equals(px.index) and list(full.columns) == list(px.columns)
    assert not full.isna().any().any()


def test_momentum_holds_the_sign_of_the_skipped_trailing_return() -> None:
    # Given a price that rises then falls; lookback 3, skip 1: sign(P[t-1] / P[t-3] - 1)
    px = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0, 4.0, 3.0, 2.0, 1.0], name="p")
    out = MomentumStrategy(lookback=3, skip=1).target_positions(px)["p"]
    # P[t-1]/P[t-3]: t=3: 3/1, t=4: 4/2, t=5: 5/3, t=6: 4/4, t=7: 3/5, t=8: 2/4
    np.testing.assert_array_equal(out.to_numpy(), [0, 0, 0, 1, 1, 1, 0, -1, -1])
    long_only = MomentumStrategy(lookback=3, skip=1, long_only=True).target_positions(px)["p"]
    assert (long_only >= 0.0).all()


def test_ma_crossover_is_the_sign_of_talib_sma_difference() -> None:
    # Given the S&P 500 index; When the 20/100 crossover targets are computed
    close = catalogue.sp500_index().iloc[-2000:]
    out = MACrossoverStrategy(20, 100).target_positions(close).iloc[:, 0]
    # Then they are sign(SMA20 - SMA100) with TA-Lib's SMA, 0 before the slow average exists
    diff = talib.SMA(close.to_numpy(), 20) - talib.SMA(close.to_numpy(), 100)
    expected = np.nan_to_num(np.sign(diff))
    np.testing.assert_array_equal(out.to_numpy(), expected)


def test_vol_target_weight_is_target_over_talib_realised_vol_capped() -> None:
    # Given real closes; When vol-targeted at 10 % with a 20-bar window and leverage cap 1.5
    px = _prices()
    out = VolTargetStrategy(target_vol=0.10, window=20, max_leverage=1.5).target_positions(px)
    # Then each weight is min(0.1 / (sample std * sqrt(252)), 1.5) / 3, with TA-Lib's STDDEV
    # (population, ddof = 0) rescaled to ddof = 1
    for col in px.columns:
        r = px[col].pct_change().to_numpy()
        sd = talib.STDDEV(r, timeperiod=20, nbdev=1.0) * math.sqrt(20 / 19) * math.sqrt(252.0)
        expected = np.nan_to_num(np.minimum(0.10 / sd, 1.5) / 3.0)
        np.testing.assert_allclose(out[col].to_numpy(), expected, rtol=1e-7, atol=1e-12)
    assert (out.to_numpy() <= 1.5 / 3 + 1e-12).all()


def test_mean_reversion_fades_the_deviation_within_bounds() -> None:
    px = _prices()
    out = MeanReversionStrategy(window=20, entry=2.0).target_positions(px)
    dev = px - px.rolling(20).mean()
    assert (np.sign(out.to_numpy()) * np.sign(dev.fillna(0.0).to_numpy()) <= 0.0).all()
    assert (out.abs().to_numpy() <= 1.0 / 3 + 1e-12).all()
    assert (out.abs().to_numpy() == 1.0 / 3).any()


def test_vol_breakout_enters_on_a_new_high_and_exits_through_the_exit_channel() -> None:
    # Given closes that break above the 4-bar high, fall through the 2-bar low, then break down
    close = pd.Series([10.0, 10.0, 10.0, 10.0, 11.0, 11.5, 11.2, 10.9, 11.0, 9.0, 9.5], name="p")
    out = VolBreakoutStrategy(entry_window=4, exit_window=2).target_positions(close)["p"]
    # Hand-derived, channels over the previous bars only:
    # t=4: 11 > max(10,10,10,10) -> long; t=6: 11.2 >= min(11, 11.5) -> hold;
    # t=7: 10.9 < min(11.5, 11.2) -> flat (and not below min(10, 11, 11.5, 11.2) = 10, so no short);
    # t=9: 9 < min(11.5, 11.2, 10.9, 11) -> short; t=10: 9.5 <= max(11, 9) and >= min(..., 9) -> hold
    np.testing.assert_array_equal(out.to_numpy(), [0, 0, 0, 0, 1, 1, 1, 0, 0, -1, -1])


def test_strategies_validate_their_parameters() -> None:
    with pytest.raises(ValueError, match="skip"):
        MomentumStrategy(lookback=10, skip=10)
    with pytest.raises(ValueError, match="fast"):
        MACrossoverStrategy(50, 20)
    with pytest.raises(ValueError, match="positive"):
        VolTargetStrategy(target_vol=-0.1)
    with pytest.raises(ValueError, match="window"):
        MeanReversionStrategy(window=1)
    with pytest.raises(ValueError, match="StrategyData"):
        MomentumStrategy().target_positions([1.0, 2.0])  # type: ignore[arg-type]
