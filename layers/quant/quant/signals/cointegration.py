"""Engle-Granger two-step cointegration test with MacKinnon's response-surface p-values.

Step 1 regresses ``y`` on ``x`` and the deterministic terms of ``trend`` by OLS; step 2 runs an
augmented Dickey-Fuller regression on the residuals, without constant (the deterministic terms
are already in step 1):

    Δe_t = ρ e_{t-1} + Σ_{i=1..p} φ_i Δe_{t-i} + u_t,     statistic = t(ρ).

The conventions are those of statsmodels' ``coint(y, x, trend, autolag=...)`` so that the two
agree to rounding:

* default ``maxlag = ceil(12 (n/100)^(1/4))``, capped at ``n // 2 - 1`` (Schwert, 1989);
* ``autolag="aic"`` / ``"bic"``: every lag 0..maxlag is fitted on the same sample (the first
  ``maxlag`` differences dropped), the criterion is ``-2 loglik + c k`` with ``k`` regressors
  (``c = 2`` or ``ln nobs``), ties go to the shorter lag; the chosen lag is then refitted on the
  longest sample it allows. ``"t-stat"`` starts from maxlag and drops lags until the last one's
  |t| >= 1.6449 (5 % two-sided normal). ``None`` uses maxlag;
* the p-value is MacKinnon's (1994) asymptotic approximation ``Φ(γ0 + γ1 τ + γ2 τ² [+ γ3 τ³])``
  for N = 2 variables, with the small-p polynomial left of τ* and the large-p one right of it,
  0 below τ_min and 1 above τ_max; the critical values are MacKinnon's (2010) finite-sample
  response surface ``β∞ + β1/T + β2/T² + β3/T³`` at ``T = n - 1``.

References
----------
Engle, R. F. and Granger, C. W. J. (1987). Co-integration and error correction: representation,
estimation and testing. Econometrica 55(2), 251-276.
MacKinnon, J. G. (1994). Approximate asymptotic distribution functions for unit-root and
cointegration tests. J. Business & Economic Statistics 12(2), 167-176 (tables 3 and 4).
MacKinnon, J. G. (2010). Critical values for cointegration tests. Queen's Economics Department
Working Paper 1227 (table 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from quant._validation import FloatArray, as_1d, same_length

__all__ = ["EngleGrangerResult", "adf_no_constant", "engle_granger", "mackinnon_critical_values", "mackinnon_pvalue"]

_TRENDS = ("n", "c", "ct", "ctt")
_AUTOLAGS = ("aic", "bic", "t-stat")
_T_STOP = 1.6448536269514722  # standard normal 95 % quantile
_SQRT_EPS = math.sqrt(np.finfo(np.float64).eps)

# MacKinnon (1994), tables 3-4, row N = 2 (one regressor besides y) of each deterministic case.
# The published tables scale γ2 by 100 (small p) and γ2, γ3 by 10 and 100 (large p); undone here.
_TAU_MAX = {"n": 1.51, "c": 0.92, "ct": 0.63, "ctt": 0.79}
_TAU_MIN = {"n": -19.62, "c": -18.86, "ct": -21.15, "ctt": -21.10}
_TAU_STAR = {"n": -1.53, "c": -2.62, "ct": -3.19, "ctt": -3.51}
_SMALL_P = {
    "n": (1.9129, 1.3857, 3.5322e-2),
    "c": (2.9200, 1.5012, 3.9796e-2),
    "ct": (3.6646, 1.5419, 3.6448e-2),
    "ctt": (4.3534, 1.6016, 3.7947e-2),
}
_LARGE_P = {
    "n": (1.5578, 0.8558, -2.0830e-1, -3.3549e-2),
    "c": (2.1945, 0.64695, -2.9198e-1, -4.2377e-2),
    "ct": (2.8500, 0.5272, -3.6622e-1, -5.1695e-2),
    "ctt": (3.4713, 0.5967, -3.2507e-1, -4.2286e-2),
}
# MacKinnon (2010), table 2, N = 2: (β∞, β1, β2, β3) at 1 %, 5 %, 10 %.
_CRIT_2010 = {
    "c": ((-3.89644, -10.9519, -33.527, 0.0), (-3.33613, -6.1101, -6.823, 0.0), (-3.04445, -4.2412, -2.720, 0.0)),
    "ct": (
        (-4.32762, -15.4387, -35.679, 0.0),
        (-3.78057, -9.5106, -12.074, 0.0),
        (-3.49631, -7.0815, -7.538, 21.892),
    ),
    "ctt": (
        (-4.69276, -20.2284, -64.919, 88.884),
        (-4.15387, -13.3114, -28.402, 72.741),
        (-3.87346, -10.4637, -17.408, 66.313),
    ),
}


@dataclass(frozen=True)
class EngleGrangerResult:
    """Outcome of :func:`engle_granger`.

    ``spread`` is the step-1 residual ``y - hedge_ratio * x - deterministic terms``, as a Series
    when ``y`` was one. ``critical_values`` maps "1%", "5%", "10%" to MacKinnon (2010) values (NaN
    for ``trend="n"``, which that table does not cover for N = 2).
    """

    hedge_ratio: float
    intercept: float
    adf_stat: float
    pvalue: float
    lags: int
    nobs: int
    trend: str
    critical_values: dict[str, float]
    spread: Any


def mackinnon_pvalue(stat: float, trend: str = "c") -> float:
    """MacKinnon's (1994) asymptotic p-value of an Engle-Granger statistic for a pair (N = 2).

    Parameters
    ----------
    stat : float
        ADF t-statistic on the cointegrating residuals.
    trend : {"n", "c", "ct", "ctt"}
        Deterministic terms of the cointegrating regression.
    """
    trend = _check_trend(trend)
    if stat > _TAU_MAX[trend]:
        return 1.0
    if stat < _TAU_MIN[trend]:
        return 0.0
    coef = _SMALL_P[trend] if stat <= _TAU_STAR[trend] else _LARGE_P[trend]
    z = sum(c * stat**i for i, c in enumerate(coef))
    return float(stats.norm.cdf(z))


def mackinnon_critical_values(nobs: int, trend: str = "c") -> dict[str, float]:
    """MacKinnon's (2010) finite-sample 1 %, 5 %, 10 % critical values for a pair (N = 2) at ``T = nobs``."""
    trend = _check_trend(trend)
    if trend == "n":
        return {"1%": math.nan, "5%": math.nan, "10%": math.nan}
    inv = 1.0 / nobs
    values = [sum(b * inv**i for i, b in enumerate(row)) for row in _CRIT_2010[trend]]
    return dict(zip(("1%", "5%", "10%"), values, strict=True))


def _check_trend(trend: str) -> str:
    if trend not in _TRENDS:
        raise ValueError(f"trend must be one of {_TRENDS}, got {trend!r}")
    return trend


def _ols(y: FloatArray, x: FloatArray) -> tuple[FloatArray, FloatArray, float]:
    """OLS coefficients, their conventional standard errors and the residual sum of squares."""
    beta, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    ssr = float(resid @ resid)
    dof = x.shape[0] - rank
    xtx_inv = np.linalg.pinv(x.T @ x)
    se = np.sqrt(np.diag(xtx_inv) * ssr / dof)
    return np.asarray(beta, dtype=np.float64), np.asarray(se, dtype=np.float64), ssr


def _information(ssr: float, nobs: int, k: int, method: str) -> float:
    loglik = -0.5 * nobs * (math.log(2.0 * math.pi) + math.log(ssr / nobs) + 1.0)
    penalty = 2.0 if method == "aic" else math.log(nobs)
    return -2.0 * loglik + penalty * k


def _adf_design(e: FloatArray, lags: int) -> tuple[FloatArray, FloatArray]:
    """Regressand Δe_t and regressors [e_{t-1}, Δe_{t-1}, ..., Δe_{t-lags}] on the sample ``lags`` allows."""
    de = np.diff(e)
    rows = de.shape[0] - lags
    x = np.empty((rows, lags + 1))
    x[:, 0] = e[lags : lags + rows]
    for i in range(1, lags + 1):
        x[:, i] = de[lags - i : lags - i + rows]
    return de[lags:], x


def _select_lag(e: FloatArray, maxlag: int, method: str) -> int:
    """Lag chosen by ``method`` with every candidate fitted on the common (maxlag-trimmed) sample.

    The candidates are nested, so one Gram matrix of the widest design serves all of them.
    """
    dy, full = _adf_design(e, maxlag)
    nobs = dy.shape[0]
    gram = full.T @ full
    cross = full.T @ dy
    yy = float(dy @ dy)
    if method == "t-stat":
        for p in range(maxlag, -1, -1):
            inv = np.linalg.inv(gram[: p + 1, : p + 1])
            beta = inv @ cross[: p + 1]
            ssr = yy - float(beta @ cross[: p + 1])
            se_last = math.sqrt(inv[p, p] * ssr / (nobs - p - 1))
            if abs(beta[p] / se_last) >= _T_STOP:
                return p
        return 0
    crit = np.empty(maxlag + 1)
    for p in range(maxlag + 1):
        coef = np.linalg.solve(gram[: p + 1, : p + 1], cross[: p + 1])
        ssr = yy - float(coef @ cross[: p + 1])
        crit[p] = _information(ssr, nobs, p + 1, method)
    return int(np.argmin(crit))  # the first minimum: ties go to the shorter lag


def adf_no_constant(e: Any, maxlag: int | None = None, autolag: str | None = "aic") -> tuple[float, int]:
    """ADF t-statistic without deterministic terms and the number of lagged differences used.

    Parameters
    ----------
    e : array_like
        The series tested (e.g. cointegrating residuals).
    maxlag : int, optional
        Largest lag considered; default ``ceil(12 (n/100)^(1/4))`` capped at ``n // 2 - 1``.
    autolag : {"aic", "bic", "t-stat", None}
        Lag selection, as in statsmodels ``adfuller(e, regression="n")`` (see the module notes).
    """
    arr = as_1d(e, "e", allow_nan=False, min_length=4)
    n = arr.shape[0]
    if maxlag is None:
        maxlag = min(n // 2 - 1, math.ceil(12.0 * (n / 100.0) ** 0.25))
    if isinstance(maxlag, bool) or not isinstance(maxlag, (int, np.integer)) or maxlag < 0:
        raise ValueError(f"maxlag must be a non-negative integer, got {maxlag!r}")
    if maxlag > n // 2 - 1:
        raise ValueError(f"maxlag={maxlag} is too large for {n} observations (at most {n // 2 - 1})")
    if autolag is not None:
        autolag = autolag.lower()
        if autolag not in _AUTOLAGS:
            raise ValueError(f"autolag must be one of {_AUTOLAGS} or None, got {autolag!r}")
    lag = int(maxlag)
    if autolag is not None:
        lag = _select_lag(arr, lag, autolag)
    dy, x = _adf_design(arr, lag)
    beta, se, _ = _ols(dy, x)
    return float(beta[0] / se[0]), lag


def _deterministic(n: int, trend: str) -> FloatArray:
    t = np.arange(1.0, n + 1.0)
    cols = {"n": [], "c": [np.ones(n)], "ct": [np.ones(n), t], "ctt": [np.ones(n), t, t * t]}[trend]
    return np.column_stack(cols) if cols else np.empty((n, 0))


def engle_granger(
    y: Any, x: Any, trend: str = "c", maxlag: int | None = None, autolag: str | None = "aic"
) -> EngleGrangerResult:
    """Engle-Granger (1987) cointegration test of ``y`` on one regressor ``x``.

    Parameters
    ----------
    y, x : array_like or pandas.Series
        The two series (levels, or log levels for a notional hedge ratio), same length, no NaN.
    trend : {"c", "ct", "ctt", "n"}
        Deterministic terms in the cointegrating regression (constant, + linear, + quadratic trend).
    maxlag, autolag
        ADF lag settings on the residuals, as in statsmodels ``coint`` (see the module notes).

    Returns
    -------
    EngleGrangerResult
        Hedge ratio (coefficient on ``x``), intercept (0 for ``trend="n"``), ADF statistic,
        MacKinnon (1994) p-value, lags used, critical values and the spread (residuals).
        Nearly collinear series (R² ≥ 1 - 100 √eps) give statistic -inf and p-value 0, as statsmodels.
    """
    trend = _check_trend(trend)
    ya = as_1d(y, "y", allow_nan=False, min_length=10)
    xa = as_1d(x, "x", allow_nan=False, min_length=10)
    n = same_length(y=ya, x=xa)
    design = np.column_stack([xa, _deterministic(n, trend)])
    beta, _, ssr = _ols(ya, design)
    resid = ya - design @ beta
    centred = ya - ya.mean() if trend != "n" else ya
    tss = float(centred @ centred)
    rsquared = 1.0 - ssr / tss if tss > 0.0 else 1.0
    if rsquared < 1.0 - 100.0 * _SQRT_EPS:
        stat, lags = adf_no_constant(resid, maxlag=maxlag, autolag=autolag)
    else:
        stat, lags = -math.inf, 0
    spread: Any = resid
    if isinstance(y, pd.Series):
        spread = pd.Series(resid, index=y.index, name="spread")
    return EngleGrangerResult(
        hedge_ratio=float(beta[0]),
        intercept=float(beta[1]) if trend != "n" else 0.0,
        adf_stat=stat,
        pvalue=mackinnon_pvalue(stat, trend) if math.isfinite(stat) else 0.0,
        lags=lags,
        nobs=n,
        trend=trend,
        critical_values=mackinnon_critical_values(n - 1, trend),
        spread=spread,
    )
