"""Markov-switching (regime-switching) volatility models fitted by maximum likelihood.

The model is Hamilton's (1989) switching regression with a constant:

    r_t = mu_{s_t} + sigma_{s_t} * eps_t,   eps_t ~ N(0, 1) i.i.d.,
    Pr(s_t = j | s_{t-1} = i) = P[i, j],

with ``s_t`` a first-order Markov chain on ``k`` states and, optionally, one mean shared by every
state (``switching_mean=False``). The likelihood is computed by the Hamilton filter with the chain
started from its ergodic (steady-state) distribution, and smoothed probabilities by Kim's (1994)
backward recursion, exactly as statsmodels' ``MarkovRegression(y, k_regimes, trend="c",
switching_variance=True)`` does by default, so the two agree on the log-likelihood at equal
parameters to rounding and at their optima to the optimisers' tolerance.

Conventions
-----------
* ``transition[i, j] = Pr(s_t = j | s_{t-1} = i)``: rows sum to one. statsmodels'
  ``regime_transition`` is the transpose (its columns sum to one).
* States are reported in increasing order of ``sigma``: state 0 is the calmest, state ``k-1``
  the most volatile (``high_vol_state``). Label switching in the optimiser never leaks out.
* ``sigma`` is the standard deviation, in the units of the input returns (statsmodels reports
  the variance ``sigma2``).

References
----------
Hamilton, J. D. (1989). A new approach to the economic analysis of nonstationary time series and
the business cycle. Econometrica 57(2), 357-384.
Kim, C.-J. (1994). Dynamic linear models with Markov-switching. J. Econometrics 60, 1-22.
Kim, C.-J. and Nelson, C. R. (1999). State-Space Models with Regime Switching, ch. 4. MIT Press.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import optimize

from quant._kernels.markov import (
    ergodic_nb,
    hamilton_filter_nb,
    kim_smoother_nb,
    ms_negloglik_grad_nb,
    unpack_params_nb,
)
from quant._validation import FloatArray, as_1d

__all__ = [
    "MIN_OBSERVATIONS",
    "FilterResult",
    "MarkovSwitchingResult",
    "ergodic_probabilities",
    "fit_markov_switching",
    "hamilton_filter",
]

MIN_OBSERVATIONS = 30
"""Fewest returns :func:`fit_markov_switching` accepts: with less, a regime holds a handful of points."""

_START_PERSISTENCE = (0.9, 0.98)
_START_HIGH_SHARE = (0.5, 0.25, 0.1)
# Central-difference step relative to |theta|: near eps**(1/3), balancing truncation against the
# rounding of a log-likelihood in the thousands.
_GRAD_STEP = 1e-5
# A state whose standardised sigma collapses below this is fitting a single point (the likelihood
# is unbounded there); such optima are discarded rather than reported.
_MIN_SIGMA_Z = 1e-3


class FilterResult(NamedTuple):
    """Output of :func:`hamilton_filter`: probabilities are (n, k), pandas when the input was."""

    filtered: Any
    predicted: Any
    smoothed: Any
    loglik: float


@dataclass(frozen=True)
class MarkovSwitchingResult:
    """A fitted Markov-switching model; states ordered by increasing ``sigmas``.

    Attributes
    ----------
    means, sigmas : (k,) arrays
        Per-state mean and standard deviation, in the units of the returns (equal means when the
        model was fitted with ``switching_mean=False``).
    transition : (k, k) array
        ``transition[i, j] = Pr(s_t = j | s_{t-1} = i)``, rows sum to one.
    initial_probabilities : (k,) array
        Ergodic distribution of ``transition``, used as Pr(s_0).
    loglik : float
        Maximised log-likelihood (Gaussian densities, constants included, as statsmodels' ``llf``).
    filtered, smoothed, predicted : DataFrame (pandas input) or (n, k) array
        Pr(s_t | r_0..r_t), Pr(s_t | r_0..r_{n-1}) and Pr(s_t | r_0..r_{t-1}); DataFrame columns
        are the state numbers 0..k-1 (named ``state``), on the index of the returns.
    expected_durations : (k,) array
        ``1 / (1 - transition[i, i])``, in bars.
    high_vol_state : int
        Index of the most volatile state (always ``k - 1``).
    n_obs, switching_mean, converged, n_starts :
        Sample size, whether the mean switched, whether the chosen optimum reported convergence,
        and how many starting points were tried. ``converged`` is BFGS's own verdict or, when its
        line search stops on rounding noise, a largest gradient component within ``10 * gtol``.
    """

    means: FloatArray
    sigmas: FloatArray
    transition: FloatArray
    initial_probabilities: FloatArray
    loglik: float
    filtered: Any
    smoothed: Any
    predicted: Any
    expected_durations: FloatArray
    high_vol_state: int
    n_obs: int
    switching_mean: bool
    converged: bool
    n_starts: int

    @property
    def k_regimes(self) -> int:
        return int(self.sigmas.shape[0])

    @property
    def n_params(self) -> int:
        k = self.k_regimes
        return k * (k - 1) + (k if self.switching_mean else 1) + k

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.n_params

    @property
    def bic(self) -> float:
        return -2.0 * self.loglik + math.log(self.n_obs) * self.n_params

    @property
    def params(self) -> pd.Series:
        """All parameters, labelled ``p[i->j]``, ``mean[i]``, ``sigma[i]`` (our state order)."""
        k = self.k_regimes
        names = [f"p[{i}->{j}]" for i in range(k) for j in range(k)]
        values = list(self.transition.ravel())
        names += [f"mean[{i}]" for i in range(k)] + [f"sigma[{i}]" for i in range(k)]
        values += list(self.means) + list(self.sigmas)
        return pd.Series(values, index=names, name="params", dtype=float)

    def most_likely_state(self, smoothed: bool = True) -> Any:
        """Index of the most probable state per bar (smoothed by default; filtered is causal)."""
        probs = self.smoothed if smoothed else self.filtered
        if isinstance(probs, pd.DataFrame):
            return pd.Series(np.argmax(probs.to_numpy(), axis=1), index=probs.index, name="state")
        return np.argmax(probs, axis=1)


def ergodic_probabilities(transition: Any) -> FloatArray:
    """Stationary distribution ``pi = pi @ transition`` of a row-stochastic, irreducible matrix.

    Parameters
    ----------
    transition : (k, k) array or DataFrame
        ``transition[i, j] = Pr(j | i)``; rows must sum to one and every entry be in [0, 1].
    """
    return _ergodic(_check_transition(transition))


def hamilton_filter(returns: Any, means: Any, sigmas: Any, transition: Any, initial: Any | None = None) -> FilterResult:
    """Run the Hamilton filter and Kim smoother at given parameters (no fitting).

    Use it to update regime probabilities on new bars with parameters fitted earlier.

    Parameters
    ----------
    returns : 1-d array or Series, no NaN
    means, sigmas : (k,) per-state mean and standard deviation (``sigmas`` > 0)
    transition : (k, k) row-stochastic matrix, ``transition[i, j] = Pr(s_t = j | s_{t-1} = i)``
    initial : (k,) Pr(s_0); default the ergodic distribution of ``transition`` (statsmodels' default)

    Returns
    -------
    FilterResult
        ``filtered``, ``predicted``, ``smoothed`` (DataFrames on the input index, columns 0..k-1,
        for a Series input) and ``loglik``, the Gaussian log-likelihood with constants.

    References
    ----------
    Hamilton (1989), Kim (1994); matches statsmodels ``MarkovRegression.loglike`` and
    ``smoothed_marginal_probabilities``.
    """
    y = as_1d(returns, "returns", allow_nan=False)
    mu = as_1d(means, "means", allow_nan=False)
    sd = as_1d(sigmas, "sigmas", allow_nan=False)
    k = mu.shape[0]
    if sd.shape[0] != k:
        raise ValueError(f"means and sigmas must have one entry per state, got {k} and {sd.shape[0]}")
    if (sd <= 0.0).any():
        raise ValueError("sigmas must be strictly positive")
    P = _check_transition(transition)
    if P.shape[0] != k:
        raise ValueError(f"transition must be {k}x{k} to match means, got {P.shape}")
    if initial is None:
        init = _ergodic(P)
    else:
        init = as_1d(initial, "initial", allow_nan=False)
        if init.shape[0] != k or (init < 0.0).any() or not np.isclose(init.sum(), 1.0, atol=1e-10):
            raise ValueError(f"initial must be {k} non-negative probabilities summing to one")
    filtered, predicted, loglik = hamilton_filter_nb(y, mu, sd, P, init)
    if not np.isfinite(loglik):
        raise ValueError("the parameters give zero likelihood to some return (sigmas far too small?)")
    smoothed = kim_smoother_nb(filtered, predicted, P)
    return FilterResult(
        _wrap_probs(returns, filtered), _wrap_probs(returns, predicted), _wrap_probs(returns, smoothed), float(loglik)
    )


def fit_markov_switching(
    returns: Any,
    k_regimes: int = 2,
    switching_mean: bool = True,
    *,
    maxiter: int = 2000,
    gtol: float = 1e-5,
) -> MarkovSwitchingResult:
    """Fit a ``k``-state Markov-switching mean/volatility model by maximum likelihood.

    Parameters
    ----------
    returns : 1-d array or Series
        Returns, any scale (percent returns keep the numbers readable); no NaN, at least
        ``MIN_OBSERVATIONS`` values, not constant.
    k_regimes : int, default 2
        Number of states (>= 2). Differential tests against statsmodels cover k = 2.
    switching_mean : bool, default True
        ``True``: one mean per state (statsmodels ``trend="c"``); ``False``: a shared mean, only
        the volatility switches.
    maxiter, gtol : optimiser settings (BFGS iterations; gradient norm tolerance on the
        log-likelihood of the standardised returns).

    Returns
    -------
    MarkovSwitchingResult
        States ordered by increasing sigma (state 0 calmest, ``high_vol_state = k - 1``).

    Notes
    -----
    Conventions: Gaussian likelihood from the Hamilton filter with Pr(s_0) the ergodic
    distribution (statsmodels' default); maximised with scipy's BFGS over an unconstrained
    parametrisation (per-row softmax logits of the transition matrix with the diagonal as
    reference, means, log sigmas) on returns standardised by their sample mean and standard
    deviation (ddof = 0), with gradients by central differences in the compiled kernel. Starting
    points: persistence in {0.9, 0.98} crossed with the most volatile state taking the top
    {50 %, 25 %, 10 %} of |standardised returns| (the others split the rest equally), each
    state's start mean/sigma being that group's sample moments; the best optimum wins. Optima
    where a sigma collapses onto a few points (the likelihood is unbounded there) are discarded.
    Smoothed probabilities by Kim (1994).

    Hamilton (1989); Kim (1994); statsmodels ``MarkovRegression`` (same likelihood and initial
    distribution; statsmodels adds EM steps before BFGS).
    """
    if isinstance(k_regimes, bool) or not isinstance(k_regimes, (int, np.integer)) or k_regimes < 2:
        raise ValueError(f"k_regimes must be an integer >= 2, got {k_regimes!r}")
    k = int(k_regimes)
    y = as_1d(returns, "returns", allow_nan=False, min_length=max(MIN_OBSERVATIONS, 10 * k))
    n = y.shape[0]
    loc = float(y.mean())
    scale = float(y.std())
    if not scale > 0.0:
        raise ValueError("returns are constant: a volatility model needs variation")
    z = np.ascontiguousarray((y - loc) / scale)

    best: optimize.OptimizeResult | None = None
    starts = _starting_points(z, k, switching_mean)
    for theta0 in starts:
        res = optimize.minimize(
            _objective,
            theta0,
            args=(z, k, switching_mean),
            jac=True,
            method="BFGS",
            options={"maxiter": maxiter, "gtol": gtol},
        )
        if not np.isfinite(res.fun):
            continue
        _, sigma_z, _ = unpack_params_nb(res.x, k, switching_mean)
        if sigma_z.min() < _MIN_SIGMA_Z:
            continue
        if best is None or res.fun < best.fun:
            best = res
    if best is None:
        raise ValueError("no starting point reached a proper optimum (a volatility state collapsed onto a point)")

    mu_z, sigma_z, P = unpack_params_nb(best.x, k, switching_mean)
    order = np.argsort(sigma_z, kind="stable")
    means = loc + scale * mu_z[order]
    sigmas = scale * sigma_z[order]
    transition = np.ascontiguousarray(P[np.ix_(order, order)])
    init = np.asarray(ergodic_nb(transition), dtype=np.float64)
    filtered, predicted, loglik = hamilton_filter_nb(y, means, sigmas, transition, init)
    smoothed = kim_smoother_nb(filtered, predicted, transition)
    with np.errstate(divide="ignore"):
        durations = 1.0 / (1.0 - np.diag(transition))
    return MarkovSwitchingResult(
        means=means,
        sigmas=sigmas,
        transition=transition,
        initial_probabilities=init,
        loglik=float(loglik),
        filtered=_wrap_probs(returns, filtered),
        smoothed=_wrap_probs(returns, smoothed),
        predicted=_wrap_probs(returns, predicted),
        expected_durations=durations,
        high_vol_state=k - 1,
        n_obs=n,
        switching_mean=switching_mean,
        converged=bool(best.success or np.abs(best.jac).max() <= 10.0 * gtol),
        n_starts=len(starts),
    )


def _objective(theta: FloatArray, z: FloatArray, k: int, switching_mean: bool) -> tuple[float, FloatArray]:
    f, g = ms_negloglik_grad_nb(theta, z, k, switching_mean, _GRAD_STEP)
    if not (np.isfinite(f) and np.isfinite(g).all()):
        # A huge finite value makes the line search back off instead of failing on inf/NaN.
        return 1e300, np.zeros_like(theta)
    return float(f), np.asarray(g, dtype=np.float64)


def _starting_points(z: FloatArray, k: int, switching_mean: bool) -> list[FloatArray]:
    abs_rank = np.argsort(np.abs(z), kind="stable")
    n = z.shape[0]
    starts: list[FloatArray] = []
    for share in _START_HIGH_SHARE:
        n_high = max(2, round(share * n))
        low_bounds = np.linspace(0, n - n_high, k).round().astype(int)
        bounds = [*low_bounds.tolist(), n]
        groups = [z[abs_rank[bounds[i] : bounds[i + 1]]] for i in range(k)]
        mu0 = np.array([g.mean() for g in groups])
        sd0 = np.array([max(float(np.sqrt(np.mean((g - g.mean()) ** 2))), 0.05) for g in groups])
        for persistence in _START_PERSISTENCE:
            off = (1.0 - persistence) / (k - 1)
            logits = np.full(k * (k - 1), math.log(off / persistence))
            means = mu0 if switching_mean else np.array([0.0])
            starts.append(np.concatenate([logits, means, np.log(sd0)]))
    return starts


def _check_transition(transition: Any) -> FloatArray:
    P = np.ascontiguousarray(np.asarray(transition, dtype=np.float64))
    if P.ndim != 2 or P.shape[0] != P.shape[1] or P.shape[0] < 2:
        raise ValueError(f"transition must be a square matrix with at least 2 states, got shape {P.shape}")
    if not np.isfinite(P).all() or (P < 0.0).any() or (P > 1.0).any():
        raise ValueError("transition entries must be probabilities in [0, 1]")
    if not np.allclose(P.sum(axis=1), 1.0, atol=1e-8, rtol=0.0):
        raise ValueError(f"transition rows must sum to one (row sums {P.sum(axis=1)})")
    return P


def _ergodic(P: FloatArray) -> FloatArray:
    try:
        pi = np.asarray(ergodic_nb(P), dtype=np.float64)
    except np.linalg.LinAlgError as exc:
        raise ValueError("transition has no unique ergodic distribution (reducible chain); pass initial") from exc
    return pi


def _wrap_probs(template: Any, probs: FloatArray) -> Any:
    if isinstance(template, (pd.Series, pd.DataFrame)):
        columns = pd.RangeIndex(probs.shape[1], name="state")
        return pd.DataFrame(probs, index=template.index, columns=columns)
    return probs
