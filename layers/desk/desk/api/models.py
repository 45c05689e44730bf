"""Request and response DTOs of the HTTP API: every body in or out is one of these (or a desk schema).

Requests forbid unknown fields and bound every number, so a malformed request fails validation
(4xx with the reason) before any port is touched. Powertools validates the decoded JSON in pydantic's
Python (lax) mode, which would coerce ``true`` to ``1.0``, ``"250"`` to ``250`` and ``0`` to 1970:
request numbers and flags are therefore strict and request timestamps must be RFC 3339 text, so what
the OpenAPI document calls invalid is refused. Venue ids use the venue alphabet (no ``:``, which
separates cache key parts). Prices and quantities are ``Decimal`` (JSON strings on the way out, as in
:mod:`desk.schemas`); analytics are finite floats.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, model_validator

from desk.domain.orders import OrderType, Side
from desk.schemas.analytics import Regime
from desk.schemas.base import Identifier, Money, NonNegativeDecimal, PositiveDecimal, Symbol, UtcDatetime
from desk.schemas.market import Bar, BookLevel, Timeframe
from desk.schemas.trading import ExecutionPlan, OrderRecord, PositionRecord

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.match(value)):
        return value
    raise ValueError("expected an RFC 3339 date-time with offset, e.g. 2024-01-31T00:00:00Z")


Timestamp = Annotated[UtcDatetime, BeforeValidator(_rfc3339)]
Number = Annotated[float, Strict()]  # int or float; not bool, not numeric text
Count = Annotated[int, Strict()]
Flag = Annotated[bool, Strict()]
VenueId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Bps = Annotated[Number, Field(ge=0.0, le=1_000.0)]
Weight = Annotated[Number, Field(ge=-1e6, le=1e6)]
Notional = Annotated[Number, Field(ge=-1e12, le=1e12)]
Move = Annotated[Number, Field(ge=-1.0, le=10.0)]
Symbols = Annotated[list[Symbol], Field(min_length=1, max_length=30)]
Matrix = list[list[float]]
# Free text a person types (a kill-switch reason): printable, tabs and line breaks allowed, no other control
# characters; PostgreSQL cannot store NUL at all, and the rest have no business in an audit trail.
FreeText = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+$")]
StrategyKind = Literal["momentum", "mean_reversion", "ma_crossover", "vol_target", "vol_breakout", "pairs"]


class ApiModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


# -- errors and health -----------------------------------------------------------------------------
class ErrorDetail(ApiModel):
    field: str = Field(description="Where the problem is: body.quantity, query.timeframe, header.authorization")
    reason: str


class ErrorBody(ApiModel):
    """The one error shape of the API."""

    code: str = Field(description="Stable machine-readable code (validation_error, not_found, conflict...)")
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class HealthResponse(ApiModel):
    status: Literal["ok", "degraded"]
    version: str
    checks: dict[str, bool]


# -- market data -----------------------------------------------------------------------------------
class TickerResponse(ApiModel):
    venue: str
    symbol: str
    ts: UtcDatetime
    bid: PositiveDecimal
    ask: PositiveDecimal
    mid: PositiveDecimal
    bid_size: NonNegativeDecimal
    ask_size: NonNegativeDecimal
    spread_bps: float
    age_seconds: float
    stale: bool


class BarsPage(ApiModel):
    venue: str
    symbol: str
    timeframe: str
    bars: list[Bar]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class OrderBookResponse(ApiModel):
    venue: str
    symbol: str
    ts: UtcDatetime
    sequence: int | None
    bids: list[BookLevel]
    asks: list[BookLevel]
    age_seconds: float
    stale: bool


# -- regimes ---------------------------------------------------------------------------------------
class RegimeProbabilityResponse(ApiModel):
    venue: str
    symbol: str
    timeframe: str
    as_of: UtcDatetime
    bars: int
    current: str
    steps: int
    probabilities: dict[str, float]
    transition: dict[str, dict[str, float]]


class RegimeBulkRequest(ApiModel):
    symbols: Annotated[list[Symbol], Field(min_length=1, max_length=50)]
    timeframe: Timeframe = "1d"


class RegimeBulkResponse(ApiModel):
    regimes: list[Regime]
    missing: list[str]


# -- correlation -----------------------------------------------------------------------------------
class MatrixResponse(ApiModel):
    source: Literal["computed", "snapshot"]
    ts: UtcDatetime
    timeframe: str
    method: str
    window: int
    symbols: list[str]
    matrix: Matrix


class PcaResponse(ApiModel):
    portfolio: str
    symbols: list[str]
    observations: int
    eigenvalues: list[float]
    explained_variance_ratio: list[float]
    loadings: dict[str, list[float]]


class SizingRequest(ApiModel):
    venue: VenueId
    symbols: Annotated[list[Symbol], Field(min_length=2, max_length=30)]
    timeframe: Timeframe = "1d"
    window: Annotated[Count, Field(ge=20, le=2_000)] = 250
    method: Literal["risk_parity", "hrp", "min_variance"] = "risk_parity"
    capital: PositiveDecimal | None = None


class SizingResponse(ApiModel):
    method: str
    as_of: UtcDatetime
    observations: int
    weights: dict[str, float]
    risk_contributions: dict[str, float]
    allocations: dict[str, Money] | None


class CorrelationStressResponse(ApiModel):
    symbols: list[str]
    quantile: float
    observations: int
    stressed_observations: int
    normal: Matrix
    stressed: Matrix


# -- execution -------------------------------------------------------------------------------------
class OptimizeRequest(ApiModel):
    venue: VenueId
    symbol: Symbol
    side: Side
    quantity: PositiveDecimal
    schedule: Literal["twap", "vwap", "almgren_chriss"] = "twap"
    horizon_minutes: Annotated[Count, Field(ge=1, le=10_080)] = 60
    slices: Annotated[Count, Field(ge=1, le=100)] = 12
    risk_aversion: Annotated[Number, Field(ge=0.0, le=1.0)] = 1e-6
    fee_bps: Bps = 10.0


class ScheduleSlice(ApiModel):
    slice_no: int
    offset_seconds: float
    quantity: float


class OptimizeResponse(ApiModel):
    schedule: str
    venue: str
    symbol: str
    side: Side
    quantity: PositiveDecimal
    slices: list[ScheduleSlice]
    expected_cost_bps: float


class CostEstimateResponse(ApiModel):
    venue: str
    symbol: str
    side: Side
    quantity: PositiveDecimal
    arrival_mid: float
    notional: float
    adv: float
    daily_vol: float
    fees: float
    spread: float
    impact: float
    total: float
    fees_bps: float
    spread_bps: float
    impact_bps: float
    total_bps: float


class RouteRequest(ApiModel):
    symbol: Symbol
    side: Side
    quantity: PositiveDecimal
    venues: Annotated[list[VenueId], Field(min_length=1, max_length=12)]
    fee_bps: dict[VenueId, Bps] = Field(default_factory=dict)
    default_fee_bps: Bps = 10.0


class RouteAllocation(ApiModel):
    venue: str
    quantity: float
    average_price: float | None
    worst_price: float | None
    notional: float
    fees: float


class RouteResponse(ApiModel):
    symbol: str
    side: Side
    filled: float
    unfilled: float
    notional: float
    fees: float
    total: float
    allocations: list[RouteAllocation]
    missing_books: list[str]


class VenueQuality(ApiModel):
    venue: str
    has_quote: bool
    stale: bool
    age_seconds: float | None
    spread_bps: float | None
    bid_depth: float
    ask_depth: float
    levels: int


class VenueAnalysisResponse(ApiModel):
    symbol: str
    as_of: UtcDatetime
    venues: list[VenueQuality]
    best: str | None


# -- risk ------------------------------------------------------------------------------------------
class PortfolioVarResponse(ApiModel):
    as_of: UtcDatetime
    confidence: float
    method: str
    observations: int
    var: float
    cvar: float
    gross_exposure: float
    net_exposure: float
    exposures: dict[str, float]


class StressTestRequest(ApiModel):
    venue: VenueId = "binance"
    timeframe: Timeframe = "1d"
    positions: dict[Symbol, Notional] | None = Field(default=None, description="Notional per symbol; null = the book")
    scenarios: dict[Annotated[str, Field(min_length=1, max_length=64)], dict[Symbol, Move]] | None = Field(
        default=None, max_length=20, description="Hypothetical moves; null = the historical windows"
    )


class StressScenarioResult(ApiModel):
    name: str
    pnl: dict[str, float]
    total: float


class StressTestResponse(ApiModel):
    exposures: dict[str, float]
    scenarios: list[StressScenarioResult]


class KellyResponse(ApiModel):
    venue: str
    timeframe: str
    fraction: float
    observations: int
    weights: dict[str, float]


class AlertRuleRequest(ApiModel):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    portfolio: Identifier = "desk"
    metric: Literal["var", "cvar", "gross_exposure", "net_exposure", "drawdown"]
    threshold: Annotated[Number, Field(ge=0.0, le=1e12)]
    severity: Literal["warning", "critical"] = "warning"
    latch_kill_switch: Flag = False


class AlertRule(AlertRuleRequest):
    rule_id: str
    created_at: UtcDatetime
    created_by: str


class KillSwitchRequest(ApiModel):
    action: Literal["latch", "release"]
    reason: FreeText


# -- strategies ------------------------------------------------------------------------------------
class TargetRow(ApiModel):
    ts: UtcDatetime
    weights: dict[str, float]


class SignalsResponse(ApiModel):
    strategy: str
    venue: str
    timeframe: str
    as_of: UtcDatetime
    targets: list[TargetRow]


class BacktestRequest(ApiModel):
    kind: StrategyKind
    params: dict[Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")], float | int | bool | str] = Field(
        default_factory=dict, max_length=16
    )
    venue: VenueId
    symbols: Annotated[list[Symbol], Field(min_length=1, max_length=20)]
    timeframe: Timeframe = "1d"
    start: Timestamp
    end: Timestamp
    fee_bps: Bps = 10.0
    half_spread_bps: Bps = 0.0
    initial_capital: Annotated[Number, Field(gt=0.0, le=1e12)] = 1_000_000.0


class EquityPoint(ApiModel):
    ts: UtcDatetime
    equity: float


class BacktestSummary(ApiModel):
    bars: int
    total_return: float
    sharpe: float
    max_drawdown: float
    turnover: float
    final_equity: float
    equity: list[EquityPoint] = Field(description="The equity curve, thinned to at most 250 points")


class BacktestJob(ApiModel):
    job_id: str
    status: Literal["queued", "running", "completed", "failed"]
    submitted_at: UtcDatetime
    result: BacktestSummary | None = None
    error: ErrorBody | None = None


class PerformanceResponse(ApiModel):
    strategy: str
    as_of: UtcDatetime
    lookback_days: int
    metrics: BacktestSummary


class AllocateRequest(ApiModel):
    strategies: Annotated[list[Identifier], Field(min_length=1, max_length=20)]
    method: Literal["equal", "risk_parity", "hrp"] = "risk_parity"
    capital: PositiveDecimal
    lookback_days: Annotated[Count, Field(ge=30, le=3_650)] = 365


class AllocateResponse(ApiModel):
    method: str
    weights: dict[str, float]
    capital: dict[str, Money]


# -- orders ----------------------------------------------------------------------------------------
class SubmitOrderRequest(ApiModel):
    venue: VenueId
    symbol: Symbol
    side: Side
    quantity: PositiveDecimal
    order_type: OrderType = OrderType.MARKET
    limit_price: PositiveDecimal | None = None
    slices: Annotated[Count, Field(ge=1, le=50)] = 1
    horizon_minutes: Annotated[Count, Field(ge=0, le=1_440)] = 0

    @model_validator(mode="after")
    def _price_matches_type(self) -> SubmitOrderRequest:
        # The domain's OrderRequest enforces this too, but there it would surface after the gate's reads.
        if (self.order_type is OrderType.LIMIT) != (self.limit_price is not None):
            raise ValueError("a limit order needs limit_price and a market order must not have one")
        return self


class SubmitOrderResponse(ApiModel):
    status: Literal["accepted"]
    plan_id: str
    execution_arn: str
    plan: ExecutionPlan


class OrderStatusResponse(ApiModel):
    id: str
    plan: ExecutionPlan | None
    orders: list[OrderRecord]


class CancelOrderRequest(ApiModel):
    client_order_id: Identifier


class PositionsResponse(ApiModel):
    as_of: datetime
    positions: list[PositionRecord]
