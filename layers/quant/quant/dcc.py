"""Dynamic conditional correlation: DCC-GARCH(1,1) by Engle's (2002) two-step estimator.

Step 1 fits a GARCH(1,1) to each asset (``quant.garch``, arch's conventions, returns scaled by
``scale``) and standardises the residuals, z_{t,i} = (r_{t,i} − μ_i) / σ_{t,i}. Step 2 holds those
fixed and estimates the correlation dynamics

    Q_t = (1 − a − b) Q̄ + a z_{t−1} z_{t−1}ᵀ + b Q_{t−1},   Q_0 = Q̄,
    R_t = diag(Q_t)^{−1/2} Q_t diag(Q_t)^{−1/2},

by maximising the correlation part of the normal log-likelihood,

    ℓ_C(a, b) = −½ Σ_t (log|R_t| + z_tᵀ R_t⁻¹ z_t − z_tᵀ z_t),

subject to a ≥ 0, b ≥ 0, a + b ≤ 1 − 1e−6. Q̄ is the sample *correlation* matrix of z (demeaned
Pearson correlation), so Q̄ has a unit diagonal and R_0 = Q̄ exactly (correlation targeting).

References: Engle, R. F. (2002), "Dynamic conditional correlation: a simple class of multivariate
GARCH models", J. of Business & Economic Statistics 20(3); Engle, R. F. and Sheppard, K. (2001),
"Theoretical and empirical properties of dynamic conditional correlation multivariate GARCH",
NBER WP 8554.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from quant._kernels.garch import dcc_correlations_nb, dcc_loglik_nb
from quant._validation import FloatArray, as_2d, labels_of
from quant.garch import MIN_OBSERVATIONS, Mean, fit_garch_many

__all__ = ["DCCResult", "dcc_fit_correlation", "dcc_garch"]

_PERSISTENCE_MAX = 1.0 - 1e-6
_GRID_A = np.array([0.005, 0.01, 0.02, 0.05, 0.1])
_GRID_PERSISTENCE = np.array([0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995])
_N_STARTS = 2


@dataclass(frozen=True)
class DCCResult:
    """A fitted DCC-GARCH(1,1). Levels (μ, ω, σ, H) are in the scaled units of step 1."""

    garch_params: pd.DataFrame  # one row per asset: mu, omega, alpha, beta, loglik, persistence, ...
    a: float
    b: float
    loglik: float  # ℓ_C at (a, b), the correlation step only
    qbar: pd.DataFrame  # Q̄, labelled by asset
    correlations: FloatArray  # R_t, shape (T, N, N)
    covariances: FloatArray | None  # H_t = D_t R_t D_t with D_t = diag(σ_t), when requested
    standardized_residuals: Any  # z, (T, N), a DataFrame for DataFrame input
    assets: tuple[str, ...]
    index: pd.Index | None  # the input's index for DataFrame input
    converged: bool  # the correlation step's optimiser and every univariate fit converged
    scale: float

    def correlation(self, t: Any = -1) -> pd.DataFrame:
        """R_t as a DataFrame labelled by asset; an int is a position (negative from the end), any
        other key is looked up in the input's index."""
        if isinstance(t, (int, np.integer)) and not isinstance(t, bool):
            pos = int(t)
        elif self.index is not None:
            loc = self.index.get_loc(t)
            if not isinstance(loc, (int, np.integer)):
                raise KeyError(f"{t!r} does not name a single observation")
            pos = int(loc)
        else:
            raise KeyError(f"{t!r} is not a position and the input had no index")
        return pd.DataFrame(self.correlations[pos], index=list(self.assets), columns=list(self.assets))

    @property
    def last_correlation(self) -> pd.DataFrame:
        """R_T, the correlation of the last observation (it depends on z up to T − 1)."""
        return self.correlation(-1)

    @property
    def persistence(self) -> float:
        """a + b."""
        return self.a + self.b


def _neg_loglik(x: FloatArray, z: FloatArray, qbar: FloatArray) -> float:
    ll = dcc_loglik_nb(z, qbar, float(x[0]), float(x[1]))
    return 1e10 if not np.isfinite(ll) else -ll / z.shape[0]


def dcc_fit_correlation(z: Any, qbar: Any | None = None) -> tuple[float, float, float, bool]:
    """Step 2 alone: estimate (a, b) from standardised residuals ``z`` (T, N).

    Parameters
    ----------
    z
        (T, N) array or DataFrame of standardised residuals (unit conditional variance), no NaN.
    qbar
        The target Q̄; defaults to the sample correlation matrix of ``z``. Must be a positive
        definite correlation-like matrix.

    Returns
    -------
    (a, b, loglik, converged)
        The maximiser of ℓ_C (see the module docstring), ℓ_C there and the optimiser's flag.
        Starting values are the best two points of a grid over a and a + b; SLSQP with
        finite-difference gradients runs from each and the higher likelihood is kept.

    Notes
    -----
    Engle (2002), section 3 (the second step of the two-step estimator).
    """
    Z = as_2d(z, "z", min_rows=MIN_OBSERVATIONS, min_cols=2)
    Qbar = np.corrcoef(Z, rowvar=False) if qbar is None else as_2d(qbar, "qbar", min_rows=2, min_cols=2)
    if Qbar.shape != (Z.shape[1], Z.shape[1]):
        raise ValueError(f"qbar must be {Z.shape[1]}x{Z.shape[1]}, got {Qbar.shape}")
    if not np.all(np.linalg.eigvalsh(Qbar) > 0.0):
        raise ValueError("qbar is not positive definite (perfectly collinear standardised residuals?)")
    Qbar = np.ascontiguousarray(Qbar)

    grid = [(a, p - a) for a in _GRID_A for p in _GRID_PERSISTENCE]
    scores = np.array([_neg_loglik(np.array(g), Z, Qbar) for g in grid])
    cons = {
        "type": "ineq",
        "fun": lambda x: _PERSISTENCE_MAX - x[0] - x[1],
        "jac": lambda x: np.array([-1.0, -1.0]),
    }
    fits: list[tuple[float, FloatArray, bool]] = []
    for k in np.argsort(scores)[:_N_STARTS]:
        res = optimize.minimize(
            _neg_loglik,
            np.array(grid[k]),
            args=(Z, Qbar),
            method="SLSQP",
            bounds=[(0.0, 1.0), (0.0, 1.0)],
            constraints=[cons],
            options={"ftol": 1e-12, "maxiter": 200},
        )
        x = np.clip(np.asarray(res.x, dtype=np.float64), 0.0, 1.0)
        f = _neg_loglik(x, Z, Qbar)
        ok = bool(res.success) or res.status == 8  # 8: no further decrease possible at this precision
        fits.append((f, x, ok))
    f, x, ok = min(fits, key=lambda fit: fit[0])
    return float(x[0]), float(x[1]), float(-f * Z.shape[0]), ok


def dcc_garch(
    returns: Any, mean: Mean = "constant", *, scale: float = 100.0, compute_covariance: bool = False
) -> DCCResult:
    """Fit a DCC-GARCH(1,1) with normal innovations by Engle's (2002) two-step estimator.

    Parameters
    ----------
    returns
        (T, N) array or DataFrame of returns (rows = observations, N ≥ 2 assets), no NaN, at least
        ``quant.garch.MIN_OBSERVATIONS`` rows.
    mean
        Mean of each univariate model: ``"constant"`` (estimated) or ``"zero"``.
    scale
        Returns are multiplied by ``scale`` before step 1 (default 100: percent returns, arch's
        recommendation). Correlations are unit-free; μ, ω, σ_t and H_t are in scaled units.
    compute_covariance
        Also return H_t = D_t R_t D_t, D_t = diag(σ_t) (T × N × N, scaled units squared).

    Returns
    -------
    DCCResult
        Univariate parameters per asset, a, b, the correlation-step log-likelihood ℓ_C, Q̄ (the
        sample correlation of z), R_t for every t (R_t uses information up to t − 1) and helpers
        ``correlation(t)`` / ``last_correlation``.

    Notes
    -----
    Step 1 is :func:`quant.garch.fit_garch_many` (arch's GARCH(1,1) conventions); step 2 is
    :func:`dcc_fit_correlation`. Engle (2002); Engle and Sheppard (2001). The two-step standard
    errors of Engle and Sheppard are not computed.
    """
    X = as_2d(returns, "returns", min_rows=MIN_OBSERVATIONS, min_cols=2)
    uni = fit_garch_many(X, mean, scale=scale)
    z = np.ascontiguousarray(np.asarray(uni.standardized_residuals, dtype=np.float64))
    a, b, ll, ok = dcc_fit_correlation(z)
    qbar = np.corrcoef(z, rowvar=False)
    R = dcc_correlations_nb(z, np.ascontiguousarray(qbar), a, b)
    assets = tuple(labels_of(returns, X.shape[1]))
    H = None
    if compute_covariance:
        vol = np.asarray(uni.conditional_volatility, dtype=np.float64)
        H = vol[:, :, None] * R * vol[:, None, :]
    params = uni.params.copy()
    params.index = pd.Index(assets, name="asset")
    index = returns.index if isinstance(returns, pd.DataFrame) else None
    z_out: Any = pd.DataFrame(z, index=index, columns=list(assets)) if index is not None else z
    return DCCResult(
        garch_params=params,
        a=a,
        b=b,
        loglik=ll,
        qbar=pd.DataFrame(qbar, index=list(assets), columns=list(assets)),
        correlations=R,
        covariances=H,
        standardized_residuals=z_out,
        assets=assets,
        index=index,
        converged=ok and bool(params["converged"].all()),
        scale=float(scale),
    )
