"""Request and response DTOs of the HTTP API: every body in or out is one of these (or a desk schema).

Requests forbid unknown fields and bound every number, so a malformed request fails validation
(4xx with the reason) before any port is touched. Powertools validates the decoded JSON in pydantic's
Python (lax) mode, which would coerce ``true`` to ``1.0``, ``"250"`` to ``250`` and ``0`` to 1970:
request numbers and flags are therefore strict and request timestamps must be RFC 3339 text, so what
the OpenAPI document calls invalid is refused. Venue ids use the venue alphabet (no ``:``, which
separates cache key parts). Prices and quantities are ``Decimal`` (JSON strings on the way out, as in
:mod:`desk.schemas`); analytics are finite floats.

Every request model and field carries an OpenAPI example that the desk can serve (symbols of the
strategy book, the demo venue, a quantity the pre-trade gate accepts): the examples document the
API, and the schemathesis fuzz builds its valid requests from them, so they must stay valid.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, Strict, WithJsonSchema, model_validator

from desk.domain.ids import client_order_id, plan_id_from
from desk.domain.orders import OrderType, Side
from desk.schemas.analytics import Regime, Signal
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
VenueId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", examples=["binance"])]
Bps = Annotated[Number, Field(ge=0.0, le=1_000.0, examples=[10.0])]
Weight = Annotated[Number, Field(ge=-1e6, le=1e6)]
Notional = Annotated[Number, Field(ge=-1e12, le=1e12)]
Move = Annotated[Number, Field(ge=-1.0, le=10.0)]
# A unified symbol in a body ("BTC/USDT" is JSON text here; in a path it travels as BTC%2FUSDT).
BookSymbol = Annotated[Symbol, Field(examples=["BTC/USDT"])]


def _positive_decimal(example: str | None = None) -> WithJsonSchema:
    # PositiveDecimal documents itself as any number or any text; a JSON number must in fact be above zero.
    # (Text stays loosely described: Decimal() reads more spellings than a pattern would say, and a
    # document stricter than the API would call accepted requests invalid.)
    schema: dict[str, JsonValue] = {
        "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string", "minLength": 1}],
        "description": "A positive decimal: a JSON number or, to keep every digit, text",
    }
    return WithJsonSchema(schema if example is None else {**schema, "examples": [example]})


Quantity = Annotated[PositiveDecimal, _positive_decimal("0.01")]
Capital = Annotated[PositiveDecimal, _positive_decimal("1000")]
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
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"symbols": ["BTC/USDT", "ETH/USDT"], "timeframe": "1d"}]}
    )

    symbols: Annotated[list[Symbol], Field(min_length=1, max_length=50, examples=[["BTC/USDT", "ETH/USDT"]])]
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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "venue": "binance",
                    "symbols": ["BTC/USDT", "ETH/USDT", "LTC/USDT"],
                    "method": "hrp",
                    "capital": "1000",
                }
            ]
        }
    )

    venue: VenueId
    symbols: Annotated[
        list[Symbol], Field(min_length=2, max_length=30, examples=[["BTC/USDT", "ETH/USDT", "LTC/USDT"]])
    ]
    timeframe: Timeframe = "1d"
    window: Annotated[Count, Field(ge=20, le=2_000)] = 250
    method: Literal["risk_parity", "hrp", "min_variance"] = "risk_parity"
    capital: Capital | None = None


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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"venue": "binance", "symbol": "BTC/USDT", "side": "buy", "quantity": "2", "schedule": "almgren_chriss"}
            ]
        }
    )

    venue: VenueId
    symbol: BookSymbol
    side: Side
    quantity: Quantity
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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"symbol": "BTC/USDT", "side": "buy", "quantity": "1", "venues": ["binance", "kraken"]}]
        }
    )

    symbol: BookSymbol
    side: Side
    quantity: Quantity
    venues: Annotated[list[VenueId], Field(min_length=1, max_length=12, examples=[["binance", "kraken"]])]
    fee_bps: dict[VenueId, Bps] = Field(default_factory=dict, examples=[{"binance": 10.0, "kraken": 16.0}])
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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"positions": {"BTC/USDT": 100000, "ETH/USDT": -50000}, "scenarios": {"crash": {"BTC/USDT": -0.5}}}
            ]
        }
    )

    venue: VenueId = "binance"
    timeframe: Timeframe = "1d"
    positions: dict[Symbol, Notional] | None = Field(
        default=None,
        description="Notional per symbol; null = the book",
        examples=[{"BTC/USDT": 100000, "ETH/USDT": -50000}],
    )
    scenarios: dict[Annotated[str, Field(min_length=1, max_length=64)], dict[Symbol, Move]] | None = Field(
        default=None,
        max_length=20,
        description="Hypothetical moves; null = the historical windows",
        examples=[{"crash": {"BTC/USDT": -0.5, "ETH/USDT": -0.6}}],
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


AlertRuleName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", examples=["var-limit"])]


class AlertRuleRequest(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "var-limit", "portfolio": "desk", "metric": "var", "threshold": 0.05}]}
    )

    name: AlertRuleName
    portfolio: Annotated[Identifier, Field(examples=["desk"])] = "desk"
    metric: Literal["var", "cvar", "gross_exposure", "net_exposure", "drawdown"]
    threshold: Annotated[Number, Field(ge=0.0, le=1e12, examples=[0.05])]
    severity: Literal["warning", "critical"] = "warning"
    latch_kill_switch: Flag = False


class AlertRule(AlertRuleRequest):
    model_config = ConfigDict(json_schema_extra={})  # a response: no request example

    rule_id: str = Field(description="`portfolio:name`")
    created_at: UtcDatetime
    created_by: str


class AlertRulesPage(ApiModel):
    portfolio: str
    rules: list[AlertRule]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class KillSwitchRequest(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"action": "latch", "reason": "drill: binance fills lag by minutes"}]}
    )

    action: Literal["latch", "release"]
    reason: Annotated[FreeText, Field(examples=["drill: binance fills lag by minutes"])]


# -- strategies ------------------------------------------------------------------------------------
class SignalsResponse(ApiModel):
    strategy: str
    venue: str
    timeframe: str
    as_of: UtcDatetime
    signals: list[Signal] = Field(description="Stored signals, newest bar first (ties by signal id)")
    next_cursor: str | None = Field(description="Pass as `cursor` for older signals; null on the last page")


_BACKTEST_EXAMPLE: dict[str, JsonValue] = {
    "kind": "momentum",
    "params": {"lookback": 20, "skip": 1},
    "venue": "binance",
    "symbols": ["BTC/USDT"],
    "start": "2019-01-01T00:00:00Z",
    "end": "2019-12-31T00:00:00Z",
}


class BacktestRequest(ApiModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_BACKTEST_EXAMPLE]})

    kind: StrategyKind
    params: dict[Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")], float | int | bool | str] = Field(
        default_factory=dict, max_length=16, examples=[{"lookback": 20, "skip": 1}]
    )
    venue: VenueId
    symbols: Annotated[list[Symbol], Field(min_length=1, max_length=20, examples=[["BTC/USDT"]])]
    timeframe: Timeframe = "1d"
    start: Annotated[Timestamp, Field(examples=["2019-01-01T00:00:00Z"])]
    end: Annotated[Timestamp, Field(examples=["2019-12-31T00:00:00Z"])]
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
    model_config = ConfigDict(json_schema_extra={"examples": [{"strategies": ["momentum_crypto"], "capital": "1000"}]})

    strategies: Annotated[list[Identifier], Field(min_length=1, max_length=20, examples=[["momentum_crypto"]])]
    method: Literal["equal", "risk_parity", "hrp"] = "risk_parity"
    capital: Capital
    lookback_days: Annotated[Count, Field(ge=30, le=3_650)] = 365


class AllocateResponse(ApiModel):
    method: str
    weights: dict[str, float]
    capital: dict[str, Money]


# -- orders ----------------------------------------------------------------------------------------
class SubmitOrderRequest(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"venue": "binance", "symbol": "BTC/USDT", "side": "buy", "quantity": "0.01"}]}
    )

    venue: VenueId
    symbol: BookSymbol
    side: Side
    quantity: Quantity
    order_type: OrderType = OrderType.MARKET
    # No example: it goes with order_type "limit" only, and an example is offered to every request.
    limit_price: Annotated[PositiveDecimal, _positive_decimal()] | None = None
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


# Ids in examples are shaped as the desk derives them; the API tests' desk stores this plan and its first child.
EXAMPLE_PLAN_ID = plan_id_from("api", "example")
EXAMPLE_CLIENT_ORDER_ID = client_order_id(EXAMPLE_PLAN_ID, 0)


class CancelOrderRequest(ApiModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"client_order_id": EXAMPLE_CLIENT_ORDER_ID}]})

    client_order_id: Annotated[Identifier, Field(examples=[EXAMPLE_CLIENT_ORDER_ID])]


class PositionsResponse(ApiModel):
    as_of: datetime
    positions: list[PositionRecord]
