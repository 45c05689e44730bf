"""Input checks and pandas round-tripping shared by the public quant functions.

Every public function converts its input with these helpers, so that bad input fails the same
way everywhere (a ``ValueError`` that names the argument and the problem) and pandas input comes
back with its index and columns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
ArrayLike1D = FloatArray | pd.Series | list[float]
ArrayLike2D = FloatArray | pd.DataFrame


def as_1d(x: Any, name: str, *, allow_nan: bool = True, min_length: int = 1) -> FloatArray:
    """Return ``x`` as a contiguous float64 1-d array, or raise ``ValueError`` saying why not."""
    if isinstance(x, pd.DataFrame):
        if x.shape[1] != 1:
            raise ValueError(f"{name} must be one-dimensional, got a DataFrame with {x.shape[1]} columns")
        x = x.iloc[:, 0]
    try:
        arr = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.shape[0] < min_length:
        raise ValueError(f"{name} needs at least {min_length} values, got {arr.shape[0]}")
    if np.isinf(arr).any():
        raise ValueError(f"{name} contains infinite values")
    if not allow_nan and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN at position {int(np.flatnonzero(np.isnan(arr))[0])}")
    return arr


def as_2d(x: Any, name: str, *, allow_nan: bool = False, min_rows: int = 2, min_cols: int = 1) -> FloatArray:
    """Return ``x`` as a C-contiguous float64 2-d array (rows = observations, columns = assets)."""
    try:
        arr = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc
    if arr.ndim != 2:
        raise ValueError(f"{name} must be two-dimensional (observations x assets), got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} observations, got {arr.shape[0]}")
    if arr.shape[1] < min_cols:
        raise ValueError(f"{name} needs at least {min_cols} columns, got {arr.shape[1]}")
    if np.isinf(arr).any():
        raise ValueError(f"{name} contains infinite values")
    if not allow_nan and np.isnan(arr).any():
        row, col = np.argwhere(np.isnan(arr))[0]
        raise ValueError(f"{name} contains NaN (first at row {row}, column {col})")
    return arr


def same_length(**arrays: FloatArray) -> int:
    """Check that all arrays have one length and return it."""
    lengths = {k: v.shape[0] for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"inputs must have the same length, got {lengths}")
    return int(next(iter(lengths.values())))


def check_period(period: int, n: int, name: str = "period", minimum: int = 1) -> int:
    """A window length must be an integer >= ``minimum`` and no longer than the data."""
    if isinstance(period, bool) or not isinstance(period, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {period!r}")
    if period < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {period}")
    if period > n:
        raise ValueError(f"{name}={period} is longer than the data ({n} values)")
    return int(period)


def check_covariance(cov: Any, name: str = "cov", *, tol: float = 1e-10) -> FloatArray:
    """A covariance matrix must be square, finite, symmetric and positive semi-definite."""
    arr = as_2d(cov, name, min_rows=1)
    if arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be square, got shape {arr.shape}")
    scale = max(1.0, float(np.abs(arr).max()))
    if not np.allclose(arr, arr.T, atol=tol * scale, rtol=0.0):
        raise ValueError(f"{name} is not symmetric")
    min_eig = float(np.linalg.eigvalsh(arr).min())
    if min_eig < -tol * scale * arr.shape[0]:
        raise ValueError(f"{name} is not positive semi-definite (smallest eigenvalue {min_eig:.3g})")
    return arr


def wrap_like(template: Any, values: FloatArray, name: str | None = None) -> Any:
    """Give ``values`` the index (and name) of ``template`` when it is a pandas object."""
    if isinstance(template, pd.Series):
        return pd.Series(values, index=template.index, name=name if name is not None else template.name)
    if isinstance(template, pd.DataFrame):
        if values.ndim == 1:
            return pd.Series(values, index=template.index, name=name)
        return pd.DataFrame(values, index=template.index, columns=template.columns)
    return values


def labels_of(x: Any, n: int, prefix: str = "x") -> list[str]:
    """Column labels of a DataFrame, or ``x0..x{n-1}`` for arrays."""
    if isinstance(x, pd.DataFrame):
        return [str(c) for c in x.columns]
    return [f"{prefix}{i}" for i in range(n)]


def apply_columns(fn: Callable[[FloatArray], FloatArray], x: Any, name: str) -> Any:
    """Apply a 1-d function column by column to a DataFrame (or once to a 1-d input)."""
    if isinstance(x, pd.DataFrame):
        return x.apply(lambda col: pd.Series(fn(as_1d(col, name)), index=col.index))
    return wrap_like(x, fn(as_1d(x, name)))
