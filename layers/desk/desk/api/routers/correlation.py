# mypy: disable-error-code="no-untyped-call"
"""Correlation: stored snapshots or on-demand matrices, PCA of a book strategy, sizing, stressed correlation."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from aws_lambda_powertools.event_handler import Depends
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from desk.api import deps
from desk.api.errors import NotFound, documented
from desk.api.frames import closes, finite, quant_errors, returns_of, split_symbols
from desk.api.models import CorrelationStressResponse, MatrixResponse, PcaResponse, SizingRequest, SizingResponse
from desk.api.routers.market import SYMBOLS_EXAMPLE, SYMBOLS_PATTERN, SymbolsQuery, TimeframeQuery, VenueQuery
from desk.domain.instruments import DECIMAL_CONTEXT
from desk.ports import Clock
from desk.store import PostgresStore
from desk.usecases.correlation import covariance_to_correlation
from desk.usecases.strategies import STRATEGIES
from quant.correlation import ledoit_wolf, pca, pearson, stress_correlation, worst_periods_mask
from quant.portfolio import hrp, min_variance, risk_contributions, risk_parity

router = Router()

WindowQuery = Annotated[int, Query(ge=10, le=2_000, description="Return observations", examples=[120])]


def _matrix(frame: pd.DataFrame) -> list[list[float]]:
    return [[finite(v, "correlation") for v in row] for row in np.asarray(frame, dtype=float)]


@router.get(
    "/correlation/matrix",
    tags=["correlation"],
    summary="Correlation of stored returns (with `symbols`) or the latest stored snapshot (without)",
    responses=documented(),
)
def matrix(
    store: Annotated[PostgresStore, Depends(deps.store)],
    clock: Annotated[Clock, Depends(deps.clock)],
    symbols: Annotated[
        str | None,
        Query(
            max_length=1_000,
            pattern=SYMBOLS_PATTERN,
            description="Comma-separated; omit for the snapshot",
            examples=[SYMBOLS_EXAMPLE],
        ),
    ] = None,
    venue: VenueQuery = "binance",
    timeframe: TimeframeQuery = "1d",
    window: WindowQuery = 90,
    method: Annotated[Literal["pearson", "ledoit_wolf"], Query(examples=["ledoit_wolf"])] = "pearson",
) -> MatrixResponse:
    if symbols is None:
        snapshot = store.latest_correlation(timeframe, method, window)
        if snapshot is None:
            raise NotFound(f"no {method} {timeframe} correlation snapshot with window {window}")
        return MatrixResponse(
            source="snapshot",
            ts=snapshot.ts,
            timeframe=timeframe,
            method=method,
            window=window,
            symbols=list(snapshot.symbols),
            matrix=[list(row) for row in snapshot.matrix],
        )
    names = split_symbols(symbols, minimum=2)
    prices = closes(store, venue, names, timeframe, clock.now(), window + 1)
    with quant_errors():
        rets = returns_of(prices)
        if method == "pearson":
            corr = pearson(rets)
        else:
            cov = ledoit_wolf(rets).covariance
            corr = pd.DataFrame(covariance_to_correlation(np.asarray(cov)), index=names, columns=names)
    return MatrixResponse(
        source="computed",
        ts=prices.index[-1].to_pydatetime(),
        timeframe=timeframe,
        method=method,
        window=len(rets),
        symbols=names,
        matrix=_matrix(corr),
    )


@router.get(
    "/correlation/pca/<portfolio>",
    tags=["correlation"],
    summary="Principal components of a book strategy's instruments",
    responses=documented(),
)
def principal_components(
    portfolio: Annotated[
        str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", examples=["momentum_crypto"])
    ],
    store: Annotated[PostgresStore, Depends(deps.store)],
    clock: Annotated[Clock, Depends(deps.clock)],
    window: WindowQuery = 250,
    components: Annotated[int | None, Query(ge=1, le=30, examples=[2])] = None,
) -> PcaResponse:
    spec = next((s for s in STRATEGIES if s.key == portfolio), None)
    if spec is None:
        raise NotFound(f"no portfolio {portfolio!r} in the strategy book")
    prices = closes(store, spec.venue, spec.symbols, spec.timeframe, clock.now(), window + 1)
    with quant_errors():
        rets = returns_of(prices)
        k = min(components or len(spec.symbols), len(spec.symbols), len(rets))
        result = pca(rets, k)
    loadings = np.asarray(result.loadings, dtype=float)
    return PcaResponse(
        portfolio=portfolio,
        symbols=list(spec.symbols),
        observations=len(rets),
        eigenvalues=[finite(v) for v in np.asarray(result.eigenvalues)],
        explained_variance_ratio=[finite(v) for v in np.asarray(result.explained_variance_ratio)],
        loadings={s: [finite(v) for v in loadings[i]] for i, s in enumerate(spec.symbols)},
    )


@router.post(
    "/correlation/position-sizing",
    tags=["correlation"],
    summary="Risk-based weights (risk parity, HRP or minimum variance) from stored returns",
    responses=documented(),
)
def position_sizing(
    request: SizingRequest,
    store: Annotated[PostgresStore, Depends(deps.store)],
    clock: Annotated[Clock, Depends(deps.clock)],
) -> SizingResponse:
    names = list(dict.fromkeys(request.symbols))
    prices = closes(store, request.venue, names, request.timeframe, clock.now(), request.window + 1)
    with quant_errors():
        rets = returns_of(prices)
        cov = rets.cov()
        if request.method == "risk_parity":
            weights = risk_parity(cov)
        elif request.method == "hrp":
            weights = hrp(rets)
        else:
            weights = min_variance(cov)
        contributions = risk_contributions(weights, cov, relative=True)
    w = {s: finite(weights[s], "weight") for s in names}
    allocations = None
    if request.capital is not None:
        allocations = {s: DECIMAL_CONTEXT.multiply(request.capital, Decimal(repr(v))) for s, v in w.items()}
    return SizingResponse(
        method=request.method,
        as_of=prices.index[-1].to_pydatetime(),
        observations=len(rets),
        weights=w,
        risk_contributions={s: finite(contributions[s]) for s in names},
        allocations=allocations,
    )


@router.get(
    "/correlation/stress-test",
    tags=["correlation"],
    summary="Correlation on the worst market days against all days",
    responses=documented(),
)
def stress(
    symbols: SymbolsQuery,
    store: Annotated[PostgresStore, Depends(deps.store)],
    clock: Annotated[Clock, Depends(deps.clock)],
    venue: VenueQuery = "binance",
    timeframe: TimeframeQuery = "1d",
    window: WindowQuery = 500,
    quantile: Annotated[float, Query(gt=0.0, lt=0.5, examples=[0.1])] = 0.1,
) -> CorrelationStressResponse:
    names = split_symbols(symbols, minimum=2)
    prices = closes(store, venue, names, timeframe, clock.now(), window + 1)
    with quant_errors():
        rets = returns_of(prices)
        # The market is the equal-weight basket of the symbols asked about.
        mask = worst_periods_mask(rets.mean(axis=1), quantile)
        stressed = stress_correlation(rets, mask)
        normal = pearson(rets)
    return CorrelationStressResponse(
        symbols=names,
        quantile=quantile,
        observations=len(rets),
        stressed_observations=int(np.asarray(mask).sum()),
        normal=_matrix(normal),
        stressed=_matrix(stressed),
    )
