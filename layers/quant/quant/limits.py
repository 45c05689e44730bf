"""Risk limits as data, and the helpers that turn a book into limit values.

A limit caps the *magnitude* of a measured value: utilisation is ``|value| / threshold`` and a
limit is breached when utilisation exceeds 1 (a value exactly at the threshold is allowed). The
risk function and the pre-trade checks both evaluate the same :class:`Limit` records, so a limit
means one thing everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quant._validation import as_1d


@dataclass(frozen=True)
class Limit:
    """One limit: ``name`` (unique key of its value), ``kind`` (what it measures, e.g. "var",
    "gross", "net", "per_symbol", "drawdown", "leverage"), ``threshold`` (> 0, in the value's
    units) and ``hard`` (a hard breach blocks trading; a soft one only alerts)."""

    name: str
    kind: str
    threshold: float
    hard: bool = True

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a limit needs a name")
        if not math.isfinite(self.threshold) or self.threshold <= 0.0:
            raise ValueError(f"limit {self.name!r}: threshold must be a finite positive number, got {self.threshold}")


LimitSet = tuple[list[Limit], dict[str, float]]


def evaluate_limits(limits: Iterable[Limit], values: Mapping[str, float]) -> pd.DataFrame:
    """Utilisation table of ``limits`` against measured ``values`` (keyed by limit name).

    Returns
    -------
    pandas.DataFrame
        Indexed by limit name, in the order given, with columns ``kind``, ``value``,
        ``threshold``, ``utilisation`` (``|value| / threshold``), ``breached``
        (``utilisation > 1``) and ``hard``.

    Raises
    ------
    ValueError
        On duplicate limit names, or a limit with no value or a non-finite one: a limit that
        cannot be evaluated must not pass silently.
    """
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for limit in limits:
        if limit.name in seen:
            raise ValueError(f"duplicate limit name {limit.name!r}")
        seen.add(limit.name)
        if limit.name not in values:
            raise ValueError(f"no value for limit {limit.name!r}")
        value = float(values[limit.name])
        if not math.isfinite(value):
            raise ValueError(f"value for limit {limit.name!r} is not finite: {value}")
        utilisation = abs(value) / limit.threshold
        rows.append(
            {
                "name": limit.name,
                "kind": limit.kind,
                "value": value,
                "threshold": limit.threshold,
                "utilisation": utilisation,
                "breached": utilisation > 1.0,
                "hard": limit.hard,
            }
        )
    columns = ["name", "kind", "value", "threshold", "utilisation", "breached", "hard"]
    return pd.DataFrame(rows, columns=columns).set_index("name")


def kelly_limit(mu: float, sigma: float, fraction: float = 0.5) -> float:
    """Fractional Kelly leverage ``fraction * mu / sigma**2``.

    The continuous-time Kelly (growth-optimal) leverage of one asset with excess drift ``mu`` and
    volatility ``sigma`` is ``mu / sigma²`` (Thorp 2006; Merton 1969). The ratio does not
    depend on the period as long as ``mu`` and ``sigma`` are per the same period (daily mean with
    daily volatility, or both annualised). A negative result means the growth-optimal bet is
    short; use its magnitude as a leverage cap. Half Kelly (the default) gives up a quarter of the
    growth rate for half the volatility.

    References
    ----------
    Thorp, E. O. (2006). The Kelly criterion in blackjack, sports betting and the stock market.
    Handbook of Asset and Liability Management, vol. 1.
    """
    mu, sigma, fraction = float(mu), float(sigma), float(fraction)
    if not (math.isfinite(mu) and math.isfinite(sigma)):
        raise ValueError(f"mu and sigma must be finite, got mu={mu}, sigma={sigma}")
    if sigma <= 0.0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return fraction * mu / sigma**2


def drawdown_limit(equity: Any, max_drawdown: float, *, hard: bool = True, name: str = "drawdown") -> LimitSet:
    """A drawdown limit and the current drawdown of an equity curve.

    The current drawdown is ``1 - equity[-1] / max(equity)``, a positive fraction of the running
    peak (0 at a new high); the limit's threshold is ``max_drawdown`` in the same units (0.2 for
    20%).

    Returns
    -------
    (list[Limit], dict[str, float])
        The limit and its value, ready for :func:`evaluate_limits`.
    """
    curve = as_1d(equity, "equity", allow_nan=False)
    if (curve <= 0.0).any():
        raise ValueError("equity must be positive")
    drawdown = 1.0 - float(curve[-1] / curve.max())
    return [Limit(name, "drawdown", float(max_drawdown), hard)], {name: drawdown}


def exposure_limits(
    positions: pd.Series,
    equity: float,
    gross: float,
    net: float,
    per_symbol: float | Mapping[str, float],
    *,
    hard: bool = True,
) -> LimitSet:
    """Gross, net and per-symbol exposure limits, with the book's exposures as fractions of equity.

    ``positions`` are signed notional values per symbol (shorts negative), in the currency of
    ``equity``. Values: gross ``Σ|p| / equity``, net ``Σp / equity`` (its magnitude is capped, so
    a net short breaches like a net long), per symbol ``|p_i| / equity``. Thresholds are in the
    same units (``gross=2.0`` allows 2x leverage). ``per_symbol`` is one cap for every symbol or a
    mapping with a cap for each held symbol.

    Returns
    -------
    (list[Limit], dict[str, float])
        Limits named ``gross``, ``net`` and ``position:<symbol>``, and their values.
    """
    if not isinstance(positions, pd.Series):
        raise ValueError("positions must be a pandas Series of notional values indexed by symbol")
    notional = as_1d(positions, "positions", allow_nan=False)
    equity = float(equity)
    if not math.isfinite(equity) or equity <= 0.0:
        raise ValueError(f"equity must be a finite positive number, got {equity}")
    limits = [Limit("gross", "gross", float(gross), hard), Limit("net", "net", float(net), hard)]
    values = {"gross": float(np.abs(notional).sum() / equity), "net": float(notional.sum() / equity)}
    for symbol, value in zip(positions.index, notional, strict=True):
        if isinstance(per_symbol, Mapping):
            if symbol not in per_symbol:
                raise ValueError(f"no per-symbol limit for {symbol!r}")
            cap = float(per_symbol[symbol])
        else:
            cap = float(per_symbol)
        key = f"position:{symbol}"
        limits.append(Limit(key, "per_symbol", cap, hard))
        values[key] = abs(float(value)) / equity
    return limits, values
