# mypy: disable-error-code="no-untyped-call"
"""Strategies: the book's stored signals, backtests (async when large), performance and allocation.

Signals are what the signals function recorded (the facts that drove orders), read back from
PostgreSQL newest first and paged with an opaque cursor; nothing is recomputed on the request path.

Backtest jobs: a request over at most :data:`SYNC_CELLS` bar-instruments runs in the request and
answers 200; a larger one answers 202 with a job id, its record and request are kept in Redis for
:data:`~desk.api.jobs.JOB_TTL` (Redis holds what may be lost: a lost job is re-submitted), and
``GET /v1/strategy/backtest/{job_id}`` polls it. The job runs on the ``job_runner`` port: in Lambda
an asynchronous invocation of the API function itself, which runs :func:`run_backtest_job`.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import numpy as np
import pandas as pd
import redis
from aws_lambda_powertools.event_handler import Depends, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from desk.api import deps, jobs
from desk.api.errors import BadRequest, NotFound, ServiceUnavailable, Unprocessable, documented
from desk.api.frames import finite, quant_errors
from desk.api.jobs import JOB_TTL, Job, input_key, job_key
from desk.api.models import (
    AllocateRequest,
    AllocateResponse,
    BacktestJob,
    BacktestRequest,
    BacktestSummary,
    EquityPoint,
    ErrorDetail,
    PerformanceResponse,
    SignalsResponse,
)
from desk.domain.instruments import DECIMAL_CONTEXT, as_decimal
from desk.ports import Clock, Store
from desk.store import PostgresStore, SignalCursor
from desk.usecases.strategies import STRATEGIES, STRATEGY_TYPES, TIMEFRAME_STEPS, StrategySpec
from quant.backtest import BacktestResult, backtest, max_drawdown_of
from quant.portfolio import hrp, risk_parity
from quant.signals.base import StrategyData

router = Router()
SYNC_CELLS = 5_000
MAX_CELLS = 500_000
_KEY_PATTERN = r"^[A-Za-z0-9_-]+$"
_SIGNAL_ID = re.compile(r"[!-~]{1,128}")
StrategyKey = Annotated[str, Query(min_length=1, max_length=64, pattern=_KEY_PATTERN, examples=["momentum_crypto"])]
# A job id as uuid4().hex makes them (the API tests' desk keeps a job under this one).
EXAMPLE_JOB_ID = "5f0c3b1e9d8a4c7b8e2f6a1d3c4b5a69"


def _spec(key: str) -> StrategySpec:
    spec = next((s for s in STRATEGIES if s.key == key), None)
    if spec is None:
        raise NotFound(f"no strategy {key!r} in the book")
    return spec


def _prices(
    store: Store, venue: str, symbols: Sequence[str], timeframe: str, start: datetime, end: datetime
) -> pd.DataFrame:
    columns = {}
    for symbol in symbols:
        bars = store.load_bars(venue, symbol, timeframe, start, end)
        columns[symbol] = pd.Series([float(b.close) for b in bars], index=pd.DatetimeIndex([b.ts for b in bars]))
    prices = pd.DataFrame(columns).dropna()
    if len(prices) < 3:
        raise Unprocessable(f"only {len(prices)} common bars of {', '.join(symbols)} in the range")
    return prices


def _summary(result: BacktestResult) -> BacktestSummary:
    equity = result.equity
    step = max(1, len(equity) // 250)
    thinned = equity.iloc[::step]
    return BacktestSummary(
        bars=len(equity),
        total_return=finite(result.total_return, "total return"),
        sharpe=finite(np.nan_to_num(result.sharpe()), "sharpe"),
        max_drawdown=finite(max_drawdown_of(result.returns), "drawdown"),
        turnover=finite(result.turnover.sum(), "turnover"),
        final_equity=finite(equity.iloc[-1], "equity"),
        equity=[
            EquityPoint(ts=pd.Timestamp(ts).to_pydatetime(), equity=finite(v, "equity"))  # type: ignore[arg-type]
            for ts, v in thinned.items()
        ],
    )


def _run(store: Store, request: BacktestRequest) -> tuple[BacktestSummary, pd.Series]:
    prices = _prices(
        store, request.venue, list(dict.fromkeys(request.symbols)), request.timeframe, request.start, request.end
    )
    with quant_errors():
        try:
            strategy = STRATEGY_TYPES[request.kind](**request.params)
        except TypeError as exc:
            raise Unprocessable(f"bad parameters for {request.kind}: {exc}") from exc
        targets = strategy.target_positions(StrategyData(prices=prices))
        result = backtest(
            prices,
            targets,
            fee_bps=request.fee_bps,
            half_spread_bps=request.half_spread_bps,
            initial_capital=request.initial_capital,
        )
        return _summary(result), result.returns


def run_backtest_job(store: Store, cache: redis.Redis, job_id: str) -> str:
    """Run queued backtest ``job_id`` from its stored request, at most once (see :func:`desk.api.jobs.execute`)."""
    return jobs.execute(cache, job_id, lambda stored: _run(store, BacktestRequest.model_validate_json(stored))[0])


def _cells(request: BacktestRequest) -> int:
    bars = (request.end - request.start) / TIMEFRAME_STEPS[request.timeframe]
    return int(bars * len(set(request.symbols)))


@router.post(
    "/strategy/backtest",
    tags=["strategy"],
    summary="Backtest a strategy on stored bars: 200 with the result, or 202 with a job to poll when large",
    responses={**documented(200, "Completed"), 202: {"description": "Queued: poll the job"}},
)
def run_backtest(
    request: BacktestRequest,
    store: Annotated[PostgresStore, Depends(deps.store)],
    cache: Annotated[redis.Redis, Depends(deps.redis_client)],
    clock: Annotated[Clock, Depends(deps.clock)],
    runner: Annotated[deps.JobRunner, Depends(deps.job_runner)],
) -> Response[BacktestJob]:
    if request.end <= request.start:
        raise Unprocessable("end must be after start")
    cells = _cells(request)
    if cells > MAX_CELLS:
        raise Unprocessable(f"{cells} bar-instruments is more than one backtest may cover ({MAX_CELLS})")
    now = clock.now()
    if cells <= SYNC_CELLS:
        summary, _ = _run(store, request)
        job = BacktestJob(job_id="sync", status="completed", submitted_at=now, result=summary)
        return Response(status_code=200, content_type="application/json", body=job)
    job = BacktestJob(job_id=uuid.uuid4().hex, status="queued", submitted_at=now)
    ttl = int(JOB_TTL.total_seconds())
    cache.set(input_key(job.job_id), request.model_dump_json(), ex=ttl)
    cache.set(job_key(job.job_id), job.model_dump_json(), ex=ttl)
    try:
        runner(Job("backtest", job.job_id, lambda: run_backtest_job(store, cache, job.job_id)))
    except ServiceUnavailable as exc:
        jobs.fail(cache, job, exc.code, exc.message)
        raise
    return Response(status_code=202, content_type="application/json", body=job)


@router.get("/strategy/backtest/<job_id>", tags=["strategy"], summary="Poll a backtest job", responses=documented())
def backtest_job(
    job_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", examples=[EXAMPLE_JOB_ID])],
    cache: Annotated[redis.Redis, Depends(deps.redis_client)],
) -> BacktestJob:
    raw = cache.get(job_key(job_id))
    if raw is None:
        raise NotFound(f"no backtest job {job_id} (unknown or expired)")
    return BacktestJob.model_validate_json(raw)


def _encode_signal_cursor(cursor: SignalCursor) -> str:
    return base64.urlsafe_b64encode(f"{cursor.ts.isoformat()}|{cursor.signal_id}".encode()).decode()


def _decode_signal_cursor(raw: str) -> SignalCursor:
    invalid = BadRequest("invalid cursor", [ErrorDetail(field="query.cursor", reason="not a cursor")])
    try:
        ts_text, _, signal_id = base64.urlsafe_b64decode(raw.encode()).decode().partition("|")
        ts = datetime.fromisoformat(ts_text)
        if ts.tzinfo is None or not _SIGNAL_ID.fullmatch(signal_id):  # a signal id is printable ASCII (no NUL)
            raise invalid
        return SignalCursor(ts.astimezone(UTC), signal_id)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError) as exc:
        raise invalid from exc


@router.get(
    "/strategy/signals/<strategy>",
    tags=["strategy"],
    summary="A book strategy's stored signals, newest first, a page at a time",
    responses=documented(),
)
def signals(
    strategy: Annotated[str, Path(min_length=1, max_length=64, pattern=_KEY_PATTERN, examples=["momentum_crypto"])],
    store: Annotated[PostgresStore, Depends(deps.store)],
    clock: Annotated[Clock, Depends(deps.clock)],
    limit: Annotated[int, Query(ge=1, le=500, examples=[6])] = 100,
    symbol: Annotated[
        str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/-]+$", examples=["BTC/USDT"])
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            max_length=400,
            description="`next_cursor` of the previous page",
            examples=["MjAyMC0wMS0xNVQwMDowMDowMCswMDowMHxzZw=="],  # signals before 2020-01-15
        ),
    ] = None,
) -> SignalsResponse:
    spec = _spec(strategy)
    before = None if cursor is None else _decode_signal_cursor(cursor)
    # One more than asked: whether an older page exists without a second query.
    rows = store.strategy_signals(spec.key, symbol=symbol, before=before, limit=limit + 1)
    page = rows[:limit]
    next_cursor = _encode_signal_cursor(SignalCursor(page[-1].ts, page[-1].signal_id)) if len(rows) > limit else None
    return SignalsResponse(
        strategy=spec.key,
        venue=spec.venue,
        timeframe=spec.timeframe,
        as_of=clock.now(),
        signals=page,
        next_cursor=next_cursor,
    )


def _book_backtest(store: Store, spec: StrategySpec, now: datetime, days: int) -> tuple[BacktestSummary, pd.Series]:
    request = BacktestRequest(
        kind=spec.kind,  # type: ignore[arg-type]
        params=dict(spec.params),
        venue=spec.venue,
        symbols=list(spec.symbols),
        timeframe=spec.timeframe,
        start=now - timedelta(days=days),
        end=now + spec.step,
        fee_bps=spec.execution.fee(spec.venue),
    )
    return _run(store, request)


@router.get(
    "/strategy/performance",
    tags=["strategy"],
    summary="A book strategy replayed on stored bars",
    responses=documented(),
)
def performance(
    strategy: StrategyKey,
    store: Annotated[PostgresStore, Depends(deps.store)],
    clock: Annotated[Clock, Depends(deps.clock)],
    lookback_days: Annotated[int, Query(ge=30, le=3_650, examples=[300])] = 365,
) -> PerformanceResponse:
    spec = _spec(strategy)
    now = clock.now()
    summary, _ = _book_backtest(store, spec, now, lookback_days)
    return PerformanceResponse(strategy=spec.key, as_of=now, lookback_days=lookback_days, metrics=summary)


@router.post(
    "/strategy/allocate", tags=["strategy"], summary="Split capital across book strategies", responses=documented()
)
def allocate(
    request: AllocateRequest,
    store: Annotated[PostgresStore, Depends(deps.store)],
    clock: Annotated[Clock, Depends(deps.clock)],
) -> AllocateResponse:
    keys = list(dict.fromkeys(request.strategies))
    specs = [_spec(k) for k in keys]
    now = clock.now()
    weights: dict[str, Any]
    if request.method == "equal" or len(specs) == 1:
        weights = {k: 1.0 / len(keys) for k in keys}
    else:
        returns = pd.DataFrame({s.key: _book_backtest(store, s, now, request.lookback_days)[1] for s in specs}).dropna()
        if len(returns) < 3:
            raise Unprocessable("the strategies share too few bars to estimate their covariance")
        with quant_errors():
            raw = risk_parity(returns.cov()) if request.method == "risk_parity" else hrp(returns)
        weights = {k: finite(raw[k], "weight") for k in keys}
    capital = {k: DECIMAL_CONTEXT.multiply(request.capital, as_decimal(w, "weight")) for k, w in weights.items()}
    return AllocateResponse(method=request.method, weights=weights, capital=capital)
