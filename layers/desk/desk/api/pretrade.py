"""The pre-trade gate for API orders: :func:`desk.domain.controls.check_order` on a context built from the ports.

Equity is the latest risk snapshot's (the risk function records it); with none the desk does not
know what an order is worth against, so the order is refused. The same gate runs again on every
child order inside the order-placement state machine; this first pass refuses early and cheaply.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from desk.api.errors import Unprocessable
from desk.api.models import ErrorDetail
from desk.domain.controls import check_order
from desk.domain.controls_config import GateConfig, GateContext, GateDecision, OrderRequest
from desk.domain.orders import Fill, Order
from desk.ports import QuoteCache
from desk.schemas.trading import OrderRecord
from desk.store import PostgresStore
from desk.usecases.strategies import STRATEGIES

__all__ = ["default_gate_config", "domain_order", "gate"]

PORTFOLIO = "desk"


def default_gate_config() -> GateConfig:
    """Until the controls configuration is wired: the symbols of the strategy book."""
    return GateConfig(allowed_symbols=frozenset(s for spec in STRATEGIES for s in spec.symbols))


def domain_order(record: OrderRecord, fills: list[Fill]) -> Order:
    return record.to_domain(fills)


def _adv(store: PostgresStore, venue: str, symbol: str, now: datetime) -> Decimal | None:
    bars = store.load_bars(venue, symbol, "1d", now - timedelta(days=30), now)
    return sum((b.volume for b in bars), Decimal(0)) / len(bars) if bars else None


def gate(
    request: OrderRequest, *, store: PostgresStore, quotes: QuoteCache, config: GateConfig, now: datetime
) -> GateDecision:
    """Assemble the gate's view of the world at ``now`` and run every control on ``request``."""
    snapshot = store.latest_risk_snapshot(PORTFOLIO)
    if snapshot is None:
        raise Unprocessable(
            "no equity on record: the risk function has not measured the book yet",
            [ErrorDetail(field="portfolio", reason="no risk snapshot")],
            code="pre_trade_rejected",
        )
    positions = store.positions(as_of=now, venue=request.venue)
    open_records = store.open_orders(request.venue)
    fills = list(store.load_fills(venue=request.venue)) if open_records else []
    context = GateContext(
        now=now,
        instrument=store.load_instruments(request.venue).get(request.symbol),
        quote=quotes.get_quote(request.venue, request.symbol),
        equity=snapshot.equity,
        average_daily_volume=_adv(store, request.venue, request.symbol, now),
        positions={p.symbol: p.quantity for p in positions},
        marks={p.symbol: p.average_price for p in positions if p.average_price > 0},
        open_orders=[domain_order(r, fills) for r in open_records],
        kill_switch_latched=store.kill_switch().latched,
    )
    return check_order(request, context, config)
