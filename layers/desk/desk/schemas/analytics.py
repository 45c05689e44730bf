"""Analytics messages: signals, regimes, correlation and risk snapshots, risk breaches.

These carry model outputs (weights, probabilities, risk ratios) as finite floats: they are not
venue amounts. Returns and VaR/CVaR are fractions of portfolio value (0.02 = 2 %), positive = loss.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from desk.schemas.base import DeskModel, FiniteFloat, Identifier, Money, Probability, Symbol, UtcDatetime
from desk.schemas.market import Timeframe

__all__ = ["CorrelationSnapshot", "Regime", "RegimeChanged", "RiskBreach", "RiskSnapshot", "Signal"]


class Signal(DeskModel):
    """Data of ``signal.generated``: a strategy's target for one symbol at bar ``ts``.

    ``target_weight`` is the desired signed fraction of strategy capital (+ long, − short, 0 flat);
    ``strength`` in [-1, 1] is the conviction the strategy reports (for sizing and attribution).
    """

    signal_id: Identifier
    strategy: Identifier
    venue: Identifier
    symbol: Symbol
    timeframe: Timeframe
    ts: UtcDatetime
    target_weight: Annotated[float, Field(ge=-10.0, le=10.0)]
    strength: Annotated[float, Field(ge=-1.0, le=1.0)]
    regime: str | None = None


class Regime(DeskModel):
    """A regime classification of ``symbol`` at ``ts``: ``state`` indexes ``probabilities``."""

    symbol: Symbol
    timeframe: Timeframe
    ts: UtcDatetime
    model: Identifier
    label: Annotated[str, Field(min_length=1, max_length=64)]
    state: Annotated[int, Field(ge=0)]
    probabilities: Annotated[tuple[Probability, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _distribution(self) -> Self:
        if self.state >= len(self.probabilities):
            raise ValueError(f"state {self.state} has no probability (only {len(self.probabilities)} states)")
        if not math.isclose(math.fsum(self.probabilities), 1.0, abs_tol=1e-6):
            raise ValueError(f"regime probabilities sum to {math.fsum(self.probabilities)}, not 1")
        return self


class RegimeChanged(DeskModel):
    """Data of ``regime.changed``: ``previous`` is None on the first classification of a symbol."""

    previous: str | None
    current: Regime


class CorrelationSnapshot(DeskModel):
    """Data of ``correlation.updated``: a correlation matrix over ``symbols`` (same order as rows).

    The matrix must be square, symmetric (to 1e-9), with unit diagonal and entries in [-1, 1].
    """

    ts: UtcDatetime
    timeframe: Timeframe
    method: Annotated[str, Field(min_length=1, max_length=32)]
    window: Annotated[int, Field(ge=2)]
    symbols: Annotated[tuple[Symbol, ...], Field(min_length=1)]
    matrix: tuple[tuple[FiniteFloat, ...], ...]

    @model_validator(mode="after")
    def _correlation_matrix(self) -> Self:
        n = len(self.symbols)
        if len(set(self.symbols)) != n:
            raise ValueError("symbols must be unique")
        if len(self.matrix) != n or any(len(row) != n for row in self.matrix):
            raise ValueError(f"matrix must be {n}x{n}")
        for i, row in enumerate(self.matrix):
            if abs(row[i] - 1.0) > 1e-9:
                raise ValueError(f"diagonal entry {i} is {row[i]}, not 1")
            for j, value in enumerate(row):
                if not -1.0 - 1e-9 <= value <= 1.0 + 1e-9 or abs(value - self.matrix[j][i]) > 1e-9:
                    raise ValueError(f"entry ({i},{j})={value} is outside [-1, 1] or not symmetric")
        return self


class RiskSnapshot(DeskModel):
    """Portfolio risk at ``ts``: VaR/CVaR as positive loss fractions at ``confidence`` over ``horizon_days``.

    Exposures are in the base currency of the portfolio; ``gross_exposure >= |net_exposure|``.
    """

    portfolio: Identifier
    ts: UtcDatetime
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)]
    horizon_days: Annotated[float, Field(gt=0.0)]
    var: FiniteFloat
    cvar: FiniteFloat
    method: Annotated[str, Field(min_length=1, max_length=32)]
    equity: Money
    gross_exposure: Money
    net_exposure: Money

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.cvar < self.var:
            raise ValueError(f"CVaR {self.cvar} must be >= VaR {self.var} at the same confidence")
        if self.gross_exposure < abs(self.net_exposure):
            raise ValueError("gross exposure must be >= |net exposure|")
        return self


class RiskBreach(DeskModel):
    """Data of ``risk.breached``: ``metric`` measured ``value`` against ``limit`` (breach: value > limit).

    ``kill_switch`` says whether the breach latched the kill switch (no new orders until released).
    """

    portfolio: Identifier
    ts: UtcDatetime
    metric: Annotated[str, Field(min_length=1, max_length=64)]
    value: FiniteFloat
    limit: FiniteFloat
    severity: Literal["warning", "critical"]
    kill_switch: bool

    @model_validator(mode="after")
    def _is_a_breach(self) -> Self:
        if not self.value > self.limit:
            raise ValueError(f"{self.metric}: value {self.value} does not exceed limit {self.limit}")
        return self
