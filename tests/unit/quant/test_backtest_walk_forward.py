"""quant.walk_forward: fold layout, choice on train data only, stitched out-of-sample equity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from desk.local import catalogue
from quant.backtest import annualised_sharpe, backtest
from quant.signals import MACrossoverStrategy
from quant.walk_forward import expand_grid, walk_forward

pytestmark = pytest.mark.unit

GRID = {"fast": [5, 20], "slow": [50, 120]}
TRAIN, TEST = 500, 250


def _factory(fast: int, slow: int) -> MACrossoverStrategy:
    return MACrossoverStrategy(fast, slow, long_only=True, regimes=None)


def _close() -> pd.Series:
    return catalogue.sp500_index().iloc[-2000:]


def test_folds_tile_the_sample_without_overlap() -> None:
    # Given 2,000 bars, 500-bar train and 250-bar test windows
    close = _close()
    wf = walk_forward(_factory, close, TRAIN, TEST, GRID, fee_bps=5.0)
    folds = wf.folds
    # Then (2000 - 500) // 250 = 6 folds, each test window after its train window, no overlap
    assert len(folds) == 6
    assert (folds["test_start"] > folds["train_end"]).all()
    assert (folds["test_start"].iloc[1:].to_numpy() > folds["test_end"].iloc[:-1].to_numpy()).all()
    assert wf.returns.index.is_unique and wf.returns.index.is_monotonic_increasing
    assert wf.returns.index.equals(close.index[TRAIN : TRAIN + 6 * TEST])
    np.testing.assert_allclose(wf.equity.to_numpy(), np.cumprod(1.0 + wf.returns.to_numpy()))
    for _, fold in folds.iterrows():
        fold_returns = wf.returns.loc[fold["test_start"] : fold["test_end"]]
        assert len(fold_returns) == TEST
        assert fold["out_of_sample"] == pytest.approx(annualised_sharpe(fold_returns.to_numpy()))


def test_choice_is_the_best_in_sample_candidate() -> None:
    # Given the first fold's train window
    close = _close()
    wf = walk_forward(_factory, close, TRAIN, TEST, GRID, fee_bps=5.0)
    train_px = close.iloc[:TRAIN]
    # When every candidate is backtested on it independently
    scores = {}
    for params in expand_grid(GRID):
        res = backtest(train_px, _factory(**params).target_positions(train_px), fee_bps=5.0)
        scores[tuple(params.values())] = annualised_sharpe(res.returns.to_numpy())
    best = max(scores, key=lambda k: scores[k])
    # Then walk_forward picked it, and reports its score as the in-sample metric
    assert tuple(wf.folds["params"].iloc[0].values()) == best
    assert wf.folds["in_sample"].iloc[0] == pytest.approx(scores[best])


@pytest.mark.parametrize("fold", [0, 2, 4])
def test_no_choice_depends_on_its_test_window(fold: int) -> None:
    # Given the real prices, and a copy whose bars from fold `fold`'s test window on are replaced
    # by an unrelated path (a reversed, rescaled copy of the data)
    close = _close()
    cut = TRAIN + fold * TEST
    tampered = close.copy()
    tampered.iloc[cut:] = close.iloc[::-1].iloc[: len(close) - cut].to_numpy() * 0.5
    # When both are walked forward
    honest = walk_forward(_factory, close, TRAIN, TEST, GRID, fee_bps=5.0)
    other = walk_forward(_factory, tampered, TRAIN, TEST, GRID, fee_bps=5.0)
    # Then every fold up to and including `fold` chose the same parameters with the same score
    for i in range(fold + 1):
        assert honest.folds["params"].iloc[i] == other.folds["params"].iloc[i]
        assert honest.folds["in_sample"].iloc[i] == other.folds["in_sample"].iloc[i]
    # And out-of-sample returns before the tampering are identical, after it they differ
    before = honest.returns.index < close.index[cut]
    np.testing.assert_array_equal(honest.returns[before].to_numpy(), other.returns[before].to_numpy())
    assert not np.allclose(honest.returns[~before].to_numpy(), other.returns[~before].to_numpy())


def test_metric_options_and_validation() -> None:
    close = _close()
    by_return = walk_forward(_factory, close, TRAIN, TEST, GRID, metric="total_return")
    custom = walk_forward(_factory, close, TRAIN, TEST, GRID, metric=lambda r: float(r.sum()))
    assert len(by_return.folds) == len(custom.folds) == 6
    assert expand_grid([{"fast": 5, "slow": 50}]) == [{"fast": 5, "slow": 50}]
    with pytest.raises(ValueError, match="metric"):
        walk_forward(_factory, close, TRAIN, TEST, GRID, metric="sortino")
    with pytest.raises(ValueError, match="longer than the data"):
        walk_forward(_factory, close, 1900, 200, GRID)
    with pytest.raises(ValueError, match="grid is empty"):
        walk_forward(_factory, close, TRAIN, TEST, [])
