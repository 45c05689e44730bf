"""desk.schemas: strict validation of market, analytics and trading messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from desk.domain import Fill, Order, OrderType, Side, client_order_id, plan_id_from, position_from_fills
from desk.schemas import (
    Balance,
    Bar,
    CorrelationSnapshot,
    ExecutionPlan,
    FillRecord,
    KillSwitchState,
    OrderBook,
    OrderCompleted,
    OrderIntent,
    OrderRecord,
    PositionRecord,
    Quote,
    Regime,
    RiskBreach,
    RiskSnapshot,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
PLAN = plan_id_from("signal-1")


def _bar(**over: Any) -> dict[str, Any]:
    return {
        "venue": "binance",
        "symbol": "BTC/USDT",
        "timeframe": "1m",
        "ts": T0,
        "open": "100",
        "high": "110",
        "low": "95",
        "close": "105",
        "volume": "12.5",
    } | over


def _rejects(model: type[BaseModel], data: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        model.model_validate(data)


# ---------------------------------------------------------------- common conventions


def test_a_valid_bar_parses_with_decimals_and_utc() -> None:
    # Given a bar stamped in UTC+2 with float and string prices
    bar = Bar.model_validate(_bar(ts=T0.astimezone(timezone(timedelta(hours=2))), open=100.1))
    # Then prices are exact Decimals and the time is UTC
    assert bar.open == Decimal("100.1") and bar.ts.utcoffset() == timedelta(0) and bar.ts == T0
    # And JSON carries Decimals as strings and the time with Z
    dumped = json.loads(bar.model_dump_json())
    assert dumped["open"] == "100.1" and dumped["volume"] == "12.5" and dumped["ts"] == "2024-03-01T12:00:00Z"
    assert Bar.model_validate_json(bar.model_dump_json()) == bar


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"high": "90"}, "high"),
        ({"open": "120"}, "open"),
        ({"close": "94"}, "close"),
        ({"volume": "-1"}, "negative"),
        ({"open": float("nan")}, "finite"),
        ({"ts": datetime(2024, 3, 1)}, "timezone-aware"),
        ({"timeframe": "2m"}, "timeframe"),
        ({"vwap": "100"}, "Extra inputs"),
    ],
)
def test_inconsistent_bars_are_rejected(over: dict[str, Any], match: str) -> None:
    _rejects(Bar, _bar(**over), match)


def test_models_are_frozen() -> None:
    bar = Bar.model_validate(_bar())
    with pytest.raises(ValidationError):
        bar.close = Decimal(1)  # type: ignore[misc]


# ---------------------------------------------------------------- market


def test_quotes_may_be_locked_but_not_crossed() -> None:
    base = {"venue": "binance", "symbol": "BTC/USDT", "ts": T0, "bid_size": "1", "ask_size": "2"}
    locked = Quote.model_validate(base | {"bid": "100", "ask": "100"})
    assert locked.mid == 100
    _rejects(Quote, base | {"bid": "100", "ask": "99.99"}, "crossed")


def test_order_books_must_be_sorted_and_uncrossed() -> None:
    base = {"venue": "binance", "symbol": "BTC/USDT", "ts": T0}

    def level(price: str) -> dict[str, str]:
        return {"price": price, "quantity": "1"}

    book = OrderBook.model_validate(base | {"bids": [level("99"), level("98")], "asks": [level("100"), level("101")]})
    assert book.bids[0].price == 99
    _rejects(OrderBook, base | {"bids": [level("98"), level("99")], "asks": []}, "descending")
    _rejects(OrderBook, base | {"bids": [], "asks": [level("101"), level("100")]}, "ascending")
    _rejects(OrderBook, base | {"bids": [level("101")], "asks": [level("100")]}, "crossed")


# ---------------------------------------------------------------- analytics


def test_regime_probabilities_form_a_distribution() -> None:
    base = {"symbol": "BTC/USDT", "timeframe": "1h", "ts": T0, "model": "msm2", "label": "calm", "state": 0}
    assert Regime.model_validate(base | {"probabilities": [0.7, 0.3]}).state == 0
    _rejects(Regime, base | {"probabilities": [0.7, 0.4]}, "sum")
    _rejects(Regime, base | {"probabilities": [1.0], "state": 1}, "no probability")


def test_correlation_matrices_are_checked() -> None:
    base = {"ts": T0, "timeframe": "1h", "method": "pearson", "window": 30, "symbols": ["A", "B"]}
    assert CorrelationSnapshot.model_validate(base | {"matrix": [[1, 0.5], [0.5, 1]]}).matrix[0][1] == 0.5
    _rejects(CorrelationSnapshot, base | {"matrix": [[1, 0.5], [0.4, 1]]}, "symmetric")
    _rejects(CorrelationSnapshot, base | {"matrix": [[1, 1.5], [1.5, 1]]}, "outside")
    _rejects(CorrelationSnapshot, base | {"matrix": [[0.9, 0.5], [0.5, 1]]}, "diagonal")
    _rejects(CorrelationSnapshot, base | {"matrix": [[1]]}, "2x2")


def test_risk_messages_are_coherent() -> None:
    snap = {
        "portfolio": "main",
        "ts": T0,
        "confidence": 0.99,
        "horizon_days": 1,
        "var": 0.02,
        "cvar": 0.03,
        "method": "historical",
        "equity": "100000",
        "gross_exposure": "150000",
        "net_exposure": "-50000",
    }
    assert RiskSnapshot.model_validate(snap).net_exposure == Decimal(-50000)
    _rejects(RiskSnapshot, snap | {"cvar": 0.01}, "CVaR")
    _rejects(RiskSnapshot, snap | {"gross_exposure": "10"}, "gross")
    breach = {
        "portfolio": "main",
        "ts": T0,
        "metric": "var",
        "limit": 0.03,
        "severity": "critical",
        "kill_switch": True,
    }
    assert RiskBreach.model_validate(breach | {"value": 0.04}).kill_switch
    _rejects(RiskBreach, breach | {"value": 0.02}, "does not exceed")


# ---------------------------------------------------------------- trading


def _plan(**over: Any) -> dict[str, Any]:
    slices = [
        {"slice_no": i, "quantity": "0.5", "not_before": T0 + timedelta(minutes=i), "limit_price": "100"}
        for i in range(2)
    ]
    return {
        "plan_id": PLAN,
        "venue": "binance",
        "symbol": "BTC/USDT",
        "side": "buy",
        "quantity": "1.0",
        "created_at": T0,
        "schedule": "twap",
        "slices": slices,
    } | over


def test_a_plan_yields_intents_with_deterministic_client_ids() -> None:
    # Given a plan of two slices
    plan = ExecutionPlan.model_validate(_plan())
    # When turned into intents
    intents = plan.intents()
    # Then each carries "<plan>-<slice>" and the slice's size
    assert [i.client_order_id for i in intents] == [f"{PLAN}-0", f"{PLAN}-1"]
    assert sum(i.quantity for i in intents) == plan.quantity


def test_plans_must_partition_their_quantity() -> None:
    _rejects(ExecutionPlan, _plan(quantity="2"), "sum to")
    slices = _plan()["slices"]
    _rejects(ExecutionPlan, _plan(slices=[slices[1], slices[0]]), "numbered")
    _rejects(ExecutionPlan, _plan(slices=[]), "at least 1")
    _rejects(ExecutionPlan, _plan(plan_id="bad id"), "plan_id")


def test_intents_are_internally_consistent() -> None:
    intent = {
        "client_order_id": client_order_id(PLAN, 3),
        "plan_id": PLAN,
        "slice_no": 3,
        "venue": "binance",
        "symbol": "BTC/USDT",
        "side": "sell",
        "order_type": "limit",
        "quantity": "1",
        "limit_price": "100",
    }
    assert OrderIntent.model_validate(intent).side is Side.SELL
    _rejects(OrderIntent, intent | {"slice_no": 4}, "is not")
    _rejects(OrderIntent, intent | {"limit_price": None}, "limit order needs")
    _rejects(OrderIntent, intent | {"order_type": "market", "limit_price": None, "post_only": True}, "post_only")
    _rejects(OrderIntent, intent | {"quantity": "0"}, "positive")


def test_orders_fills_and_positions_convert_from_the_domain() -> None:
    # Given a domain order filled by one fill
    coid = client_order_id(PLAN, 0)
    fill = Fill(
        "binance", "t1", coid, "BTC/USDT", Side.BUY, Decimal("1"), Decimal("100.5"), T0, Decimal("0.001"), "BTC"
    )
    order = Order(coid, "binance", "BTC/USDT", Side.BUY, Decimal(1), OrderType.LIMIT, Decimal(101)).add_fill(fill)
    # When converted to records
    record = OrderCompleted.from_domain(order, updated_at=T0)
    fill_record = FillRecord.from_domain(fill)
    position = PositionRecord.from_domain(position_from_fills([fill]), as_of=T0)
    # Then they carry the same facts, and the fill round-trips through JSON back to the domain
    assert record.state == "filled" and record.average_price == Decimal("100.5")
    assert FillRecord.model_validate_json(fill_record.model_dump_json()).to_domain() == fill
    assert position.quantity == 1 and position.average_price == Decimal("100.5")
    # And a record of a working order is not a completed order
    working = Order(coid, "binance", "BTC/USDT", Side.BUY, Decimal(1), OrderType.MARKET)
    assert OrderRecord.from_domain(working, updated_at=T0).state == "new"
    with pytest.raises(ValidationError, match="terminal"):
        OrderCompleted.from_domain(working, updated_at=T0)


def test_order_records_agree_with_their_fills() -> None:
    base = OrderRecord.from_domain(
        Order("c-1", "binance", "BTC/USDT", Side.BUY, Decimal(2), OrderType.MARKET), updated_at=T0
    ).model_dump()
    _rejects(OrderRecord, base | {"filled_quantity": "3"}, "exceeds")
    _rejects(OrderRecord, base | {"state": "filled"}, "disagrees")
    _rejects(OrderRecord, base | {"filled_quantity": "1", "state": "partially_filled"}, "average_price")


def test_balances_add_up_and_the_kill_switch_needs_a_reason() -> None:
    assert Balance(venue="binance", currency="USDT", free="10", used="5", total="15").total == 15  # type: ignore[arg-type]
    _rejects(Balance, {"venue": "binance", "currency": "USDT", "free": "10", "used": "5", "total": "16"}, "total")
    assert not KillSwitchState(latched=False).latched
    _rejects(KillSwitchState, {"latched": True}, "reason")
