# mypy: disable-error-code="no-untyped-call"
"""Regimes: the stored classification, and transition probabilities computed from stored bars."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Depends
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from desk.api import deps
from desk.api.errors import NotFound, Unprocessable, documented
from desk.api.frames import bar_frame, path_symbol, quant_errors
from desk.api.models import RegimeBulkRequest, RegimeBulkResponse, RegimeProbabilityResponse
from desk.api.routers.market import SymbolPath, TimeframeQuery, VenueQuery
from desk.ports import Clock
from desk.schemas.analytics import Regime
from desk.store import PostgresStore
from desk.usecases.regime import STATES, thresholds_for
from quant.regime import classify_regimes, next_regime_probabilities, transition_matrix

router = Router()


@router.get("/regime/current/<symbol>", tags=["regime"], summary="The latest stored regime", responses=documented())
def current(
    symbol: SymbolPath,
    store: Annotated[PostgresStore, Depends(deps.store)],
    timeframe: TimeframeQuery = "1d",
) -> Regime:
    name = path_symbol(symbol)
    regime = store.latest_regime(name, timeframe)
    if regime is None:
        raise NotFound(f"no {timeframe} regime stored for {name}")
    return regime


@router.get(
    "/regime/probability/<symbol>",
    tags=["regime"],
    summary="Next-regime probabilities from the empirical transition matrix of stored bars",
    responses=documented(),
)
def probability(
    symbol: SymbolPath,
    store: Annotated[PostgresStore, Depends(deps.store)],
    clock: Annotated[Clock, Depends(deps.clock)],
    venue: VenueQuery = "binance",
    timeframe: TimeframeQuery = "1d",
    steps: Annotated[int, Query(ge=1, le=100, examples=[2])] = 1,
    lookback: Annotated[int, Query(ge=50, le=5_000, description="Bars to classify", examples=[400])] = 500,
) -> RegimeProbabilityResponse:
    name = path_symbol(symbol)
    frame = bar_frame(store, venue, name, timeframe, clock.now(), lookback)
    with quant_errors():
        labels = classify_regimes(frame["high"], frame["low"], frame["close"], thresholds_for(timeframe))
        if labels.dropna().empty:
            raise Unprocessable(f"{len(frame)} bars are not enough to classify {name} (still warming up)")
        matrix = transition_matrix(labels, STATES)
        probs = next_regime_probabilities(labels, steps=steps, states=STATES, transition=matrix)
    return RegimeProbabilityResponse(
        venue=venue,
        symbol=name,
        timeframe=timeframe,
        as_of=frame.index[-1].to_pydatetime(),
        bars=len(frame),
        current=str(labels.dropna().iloc[-1]),
        steps=steps,
        probabilities={str(k): float(v) for k, v in probs.items()},
        transition={str(i): {str(j): float(matrix.loc[i, j]) for j in matrix.columns} for i in matrix.index},
    )


@router.post("/regime/bulk", tags=["regime"], summary="Latest stored regimes of many symbols", responses=documented())
def bulk(request: RegimeBulkRequest, store: Annotated[PostgresStore, Depends(deps.store)]) -> RegimeBulkResponse:
    found: list[Regime] = []
    missing: list[str] = []
    for symbol in dict.fromkeys(request.symbols):
        regime = store.latest_regime(symbol, request.timeframe)
        if regime is None:
            missing.append(symbol)
        else:
            found.append(regime)
    return RegimeBulkResponse(regimes=found, missing=missing)
