"""The pre-trade gate for API orders: :func:`desk.domain.controls.check_order` on a context built from the ports.

The context is assembled by :mod:`desk.usecases.gate`, as for the order tasks; here the quote is the
cached one and the instrument the stored one (no venue call on the request path). Equity is the
latest risk snapshot's (the risk function records it); with none the desk does not know what an
order is worth against, so the order is refused. The same gate runs again on every
child order inside the order-placement state machine; this first pass refuses early and cheaply.
"""

from __future__ import annotations

from datetime import datetime

from desk.api.errors import Unprocessable
from desk.api.models import ErrorDetail
from desk.domain.controls import check_order
from desk.domain.controls_config import GateConfig, GateDecision, OrderRequest
from desk.domain.orders import Fill, Order
from desk.ports import QuoteCache
from desk.schemas.trading import OrderRecord
from desk.store import PostgresStore
from desk.usecases.gate import MarketView, gate_context
from desk.usecases.strategies import STRATEGIES

__all__ = ["default_gate_config", "domain_order", "gate"]

PORTFOLIO = "desk"


def default_gate_config() -> GateConfig:
    """Until the controls configuration is wired: the symbols of the strategy book."""
    return GateConfig(allowed_symbols=frozenset(s for spec in STRATEGIES for s in spec.symbols))


def domain_order(record: OrderRecord, fills: list[Fill]) -> Order:
    return record.to_domain(fills)


def gate(
    request: OrderRequest, *, store: PostgresStore, quotes: QuoteCache, config: GateConfig, now: datetime
) -> GateDecision:
    """Run every control on ``request`` at ``now``: the cached quote, the stored instrument, the snapshot's equity."""
    snapshot = store.latest_risk_snapshot(PORTFOLIO)
    if snapshot is None:
        raise Unprocessable(
            "no equity on record: the risk function has not measured the book yet",
            [ErrorDetail(field="portfolio", reason="no risk snapshot")],
            code="pre_trade_rejected",
        )
    market = MarketView(
        quote=quotes.get_quote(request.venue, request.symbol),
        instrument=store.load_instruments(request.venue).get(request.symbol),
        equity=snapshot.equity,
        kill_switch_latched=store.kill_switch().latched,
    )
    return check_order(request, gate_context(request, market, store=store, config=config, now=now), config)
