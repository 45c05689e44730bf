# mypy: disable-error-code="no-untyped-call"
"""Orders: submit (idempotent on the ``Idempotency-Key`` header), status, cancel, and positions.

Submit follows the signal path: the pre-trade gate, a stored :class:`ExecutionPlan`, and the
order-placement execution started by name = plan id. The plan id is derived from the caller and the
key, so a repeat finds the stored plan, restarts nothing new (the start is idempotent on the name)
and answers the same body; the same key with a different order is a 409.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Annotated

from aws_lambda_powertools.event_handler import Depends
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query

from desk.api import deps
from desk.api.auth import TRADE, Claims
from desk.api.errors import Conflict, NotFound, Unprocessable, documented
from desk.api.models import (
    EXAMPLE_PLAN_ID,
    CancelOrderRequest,
    ErrorDetail,
    OrderStatusResponse,
    PositionsResponse,
    SubmitOrderRequest,
    SubmitOrderResponse,
)
from desk.api.pretrade import domain_order, gate
from desk.domain.controls_config import GateConfig, OrderRequest
from desk.domain.instruments import DECIMAL_CONTEXT
from desk.domain.orders import CancelRequested, client_order_id, parse_client_order_id, plan_id_from
from desk.ports import Clock, QuoteCache
from desk.schemas.trading import ExecutionPlan, OrderRecord, PlanSlice
from desk.store import PostgresStore
from desk.usecases.cost_optimiser import ExecutionStarter

router = Router()
STRATEGY = "api"  # what the gate's duplicate check keys API orders on


def _same_order(plan: ExecutionPlan, request: SubmitOrderRequest) -> bool:
    first = plan.slices[0]
    return (plan.venue, plan.symbol, plan.side, plan.quantity, len(plan.slices)) == (
        request.venue,
        request.symbol,
        request.side,
        request.quantity,
        request.slices,
    ) and (first.order_type, first.limit_price) == (request.order_type, request.limit_price)


def _plan(plan_id: str, request: SubmitOrderRequest, store: PostgresStore, clock: Clock) -> ExecutionPlan:
    instrument = store.load_instruments(request.venue).get(request.symbol)
    if instrument is None:
        raise Unprocessable(f"unknown instrument {request.venue} {request.symbol}")
    n = request.slices
    each = instrument.amount_to_precision(DECIMAL_CONTEXT.divide(request.quantity, Decimal(n)))
    last = request.quantity - each * (n - 1)
    now = clock.now()
    step = timedelta(minutes=request.horizon_minutes) / n
    slices = tuple(
        PlanSlice(
            slice_no=k,
            quantity=last if k == n - 1 else each,
            not_before=now + step * k,
            order_type=request.order_type,
            limit_price=request.limit_price,
        )
        for k in range(n)
    )
    return ExecutionPlan(
        plan_id=plan_id,
        strategy=STRATEGY,
        venue=request.venue,
        symbol=request.symbol,
        side=request.side,
        quantity=request.quantity,
        created_at=now,
        schedule="immediate" if n == 1 else "twap",
        slices=slices,
    )


@router.post(
    "/orders/submit",
    tags=["orders"],
    summary="Submit a parent order (pre-trade gate, plan, execution); idempotent on Idempotency-Key",
    status_code=202,
    responses=documented(202, "Accepted: the plan is stored and its execution started"),
)
def submit(
    request: SubmitOrderRequest,
    idempotency_key: Annotated[
        str,
        Header(
            alias="Idempotency-Key", min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", examples=["order-0001"]
        ),
    ],
    store: Annotated[PostgresStore, Depends(deps.store)],
    quotes: Annotated[QuoteCache, Depends(deps.quote_cache)],
    clock: Annotated[Clock, Depends(deps.clock)],
    starter: Annotated[ExecutionStarter, Depends(deps.execution_starter)],
    config: Annotated[GateConfig, Depends(deps.gate_config)],
    caller: Annotated[Claims, Depends(deps.caller)],
) -> SubmitOrderResponse:
    caller.require(TRADE)
    plan_id = plan_id_from(STRATEGY, caller.subject, idempotency_key)
    plan = store.load_plan(plan_id)
    if plan is not None and not _same_order(plan, request):
        raise Conflict("this Idempotency-Key was used for a different order", code="idempotency_conflict")
    if plan is None:
        intent = OrderRequest(
            client_order_id=client_order_id(plan_id, 0),
            strategy=STRATEGY,
            venue=request.venue,
            symbol=request.symbol,
            side=request.side,
            order_type=request.order_type,
            quantity=request.quantity,
            limit_price=request.limit_price,
        )
        decision = gate(intent, store=store, quotes=quotes, config=config, now=clock.now())
        if not decision.accepted:
            details = [ErrorDetail(field=str(r.code), reason=r.message) for r in decision.reasons]
            raise Unprocessable("the pre-trade gate refused the order", details, code="pre_trade_rejected")
        built = _plan(plan_id, request, store, clock)
        # A concurrent repeat may have stored it first: the stored plan is the one that runs.
        plan = built if store.save_plan(built) else (store.load_plan(plan_id) or built)
    arn = starter.start(plan.plan_id, plan.model_dump(mode="json"))
    return SubmitOrderResponse(status="accepted", plan_id=plan.plan_id, execution_arn=arn, plan=plan)


@router.get(
    "/orders/status/<id>",
    tags=["orders"],
    summary="A plan and its child orders, by plan or client order id",
    responses=documented(),
)
def status(
    id: Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$", examples=[EXAMPLE_PLAN_ID])],
    store: Annotated[PostgresStore, Depends(deps.store)],
) -> OrderStatusResponse:
    plan = store.load_plan(id)
    if plan is not None:
        return OrderStatusResponse(id=id, plan=plan, orders=store.orders_for_plan(id))
    order = store.load_order(id)
    if order is None:
        raise NotFound(f"no plan or order {id}")
    try:
        parent = store.load_plan(parse_client_order_id(id)[0])
    except ValueError:
        parent = None
    return OrderStatusResponse(id=id, plan=parent, orders=[order])


@router.post("/orders/cancel", tags=["orders"], summary="Request cancellation of a child order", responses=documented())
def cancel(
    request: CancelOrderRequest,
    store: Annotated[PostgresStore, Depends(deps.store)],
    clock: Annotated[Clock, Depends(deps.clock)],
    caller: Annotated[Claims, Depends(deps.caller)],
) -> OrderRecord:
    caller.require(TRADE)
    record = store.load_order(request.client_order_id)
    if record is None:
        raise NotFound(f"no order {request.client_order_id}")
    fills = list(store.fills_for_orders([record.client_order_id]))
    # The domain state machine decides: a terminal order raises InvalidTransition (409); a repeat is a no-op.
    after = domain_order(record, fills).apply(CancelRequested())
    updated = OrderRecord.from_domain(after, updated_at=clock.now())
    if after.state != record.state:
        store.upsert_order(updated)
    return store.load_order(request.client_order_id) or updated


@router.get(
    "/positions/current", tags=["orders"], summary="Positions folded from recorded fills", responses=documented()
)
def positions(
    store: Annotated[PostgresStore, Depends(deps.store)],
    clock: Annotated[Clock, Depends(deps.clock)],
    venue: Annotated[
        str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", examples=["binance"])
    ] = None,
    symbol: Annotated[
        str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/-]+$", examples=["BTC/USDT"])
    ] = None,
) -> PositionsResponse:
    now = clock.now()
    return PositionsResponse(as_of=now, positions=store.positions(as_of=now, venue=venue, symbol=symbol))
