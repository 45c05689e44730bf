"""Plans, orders, the order-event log, fills and positions.

Natural keys make every write idempotent: ``plan_id``, ``client_order_id``, the event ``id`` and
``(venue, venue_trade_id)``. Orders only move forward: an upsert carrying a lower state rank, a
smaller filled quantity, or a change to a terminal order is ignored (late or reordered deliveries).
Positions are read from the ``positions`` view, the SQL twin of ``position_from_fills``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from desk.domain.controls_config import OrderActivity
from desk.domain.errors import DuplicateFillConflict, InvalidClientOrderId
from desk.domain.orders import Fill, OrderState, Side, parse_client_order_id
from desk.events import Envelope
from desk.schemas.trading import ExecutionPlan, OrderRecord, PositionRecord
from desk.store.base import Repository
from desk.store.connection import Connection

__all__ = ["TradingRepository"]

_SAVE_PLAN = """
INSERT INTO plans (plan_id, signal_id, venue, symbol, side, quantity, created_at, schedule, document)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (plan_id) DO NOTHING
"""
_UPSERT_ORDER = """
INSERT INTO orders AS o (client_order_id, plan_id, venue, symbol, side, order_type, quantity, limit_price,
                         time_in_force, state, state_rank, venue_order_id, filled_quantity, average_price,
                         reject_reason, updated_at, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (client_order_id) DO UPDATE
   SET state = EXCLUDED.state, state_rank = EXCLUDED.state_rank,
       venue_order_id = coalesce(EXCLUDED.venue_order_id, o.venue_order_id),
       filled_quantity = EXCLUDED.filled_quantity, average_price = EXCLUDED.average_price,
       reject_reason = coalesce(EXCLUDED.reject_reason, o.reject_reason), updated_at = EXCLUDED.updated_at
 WHERE o.state_rank < 4
   AND EXCLUDED.state_rank >= o.state_rank
   AND EXCLUDED.filled_quantity >= o.filled_quantity
"""
_ORDER_ACTIVITY = """
SELECT o.client_order_id, coalesce(p.document->>'strategy', p.signal_id, o.plan_id, o.client_order_id),
       o.symbol, o.side, o.quantity, o.created_at,
       CASE WHEN o.state IN ('pending_cancel', 'cancelled') THEN o.updated_at END
  FROM orders o LEFT JOIN plans p ON p.plan_id = o.plan_id
 WHERE o.state <> 'rejected'
   AND ((o.created_at > %s AND o.created_at <= %s)
        OR (o.state IN ('pending_cancel', 'cancelled') AND o.updated_at > %s AND o.updated_at <= %s))
 ORDER BY o.created_at, o.client_order_id
"""
_SELECT_ORDERS = sql.SQL(
    "SELECT client_order_id, venue, symbol, side, order_type, quantity, limit_price, time_in_force, state,"
    " venue_order_id, filled_quantity, average_price, reject_reason, updated_at FROM orders WHERE {where}"
    " ORDER BY updated_at, client_order_id"
)
_ORDER_FIELDS = (
    "client_order_id", "venue", "symbol", "side", "order_type", "quantity", "limit_price", "time_in_force", "state",
    "venue_order_id", "filled_quantity", "average_price", "reject_reason", "updated_at",
)  # fmt: skip
_APPEND_EVENT = """
INSERT INTO order_events (event_id, type, version, occurred_at, correlation_id, client_order_id, envelope)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (event_id) DO NOTHING
"""
_FILL_FIELDS = (
    "venue", "venue_trade_id", "client_order_id", "symbol", "side", "quantity", "price", "occurred_at", "fee",
    "fee_currency", "liquidity",
)  # fmt: skip
_INSERT_FILL = """
INSERT INTO fills (venue, venue_trade_id, client_order_id, symbol, side, quantity, price, occurred_at, fee,
                   fee_currency, liquidity, adjustment)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (venue, venue_trade_id) DO NOTHING
"""
_SELECT_FILL = sql.SQL(
    "SELECT venue, venue_trade_id, client_order_id, symbol, side, quantity, price, occurred_at, fee, fee_currency,"
    " liquidity FROM fills WHERE {where} ORDER BY occurred_at, venue_trade_id"
)
_SELECT_POSITIONS = sql.SQL(
    "SELECT venue, symbol, quantity, average_price, realised_pnl FROM positions WHERE {where} ORDER BY venue, symbol"
)


def _where(filters: dict[str, Any]) -> tuple[sql.Composable, list[Any]]:
    """``a = %s AND b >= %s`` from ``{"a": x, "b >=": y}``, skipping ``None`` values (column names are ours)."""
    parts: list[sql.Composable] = []
    params: list[Any] = []
    for key, value in filters.items():
        if value is None:
            continue
        column, _, op = key.partition(" ")
        parts.append(sql.SQL("{} {} %s").format(sql.Identifier(column), sql.SQL(op or "=")))
        params.append(value)
    return (sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")), params


def _plan_id_of(client_order_id: str) -> str | None:
    try:
        return parse_client_order_id(client_order_id)[0]
    except InvalidClientOrderId:
        return None  # an order the desk did not originate (found on the venue by reconciliation)


def _fill_from_row(row: Sequence[Any]) -> Fill:
    values = dict(zip(_FILL_FIELDS, row, strict=True))
    values["occurred_at"] = values["occurred_at"].astimezone(UTC)
    return Fill(**values)


class TradingRepository(Repository):
    # -- plans ----------------------------------------------------------------------------------
    def save_plan(self, plan: ExecutionPlan) -> bool:
        """Idempotent on ``plan_id``; False when it existed (a redelivered signal)."""
        p = plan
        document = Jsonb(p.model_dump(mode="json"))
        params = (
            p.plan_id,
            p.signal_id,
            p.venue,
            p.symbol,
            p.side.value,
            p.quantity,
            p.created_at,
            p.schedule,
            document,
        )
        return self._db.run(lambda conn: conn.execute(_SAVE_PLAN, params).rowcount) == 1

    def load_plan(self, plan_id: str) -> ExecutionPlan | None:
        row = self._db.run(
            lambda conn: conn.execute("SELECT document FROM plans WHERE plan_id = %s", (plan_id,)).fetchone()
        )
        return None if row is None else ExecutionPlan.model_validate_json(json.dumps(row[0]))

    # -- orders ---------------------------------------------------------------------------------
    def upsert_order(self, order: OrderRecord) -> None:
        """Insert or move forward by ``client_order_id``; stale or backward updates are ignored."""
        o = order
        params = (
            o.client_order_id, _plan_id_of(o.client_order_id), o.venue, o.symbol, o.side.value, o.order_type.value,
            o.quantity, o.limit_price, o.time_in_force.value, o.state.value, o.state.rank, o.venue_order_id,
            o.filled_quantity, o.average_price, o.reject_reason, o.updated_at, o.updated_at,
        )  # fmt: skip
        self._db.run(lambda conn: conn.execute(_UPSERT_ORDER, params))

    def order_activity(self, since: datetime, until: datetime) -> list[OrderActivity]:
        """Orders the desk sent or asked to cancel in ``(since, until]`` (refused ones excluded), oldest first.

        Each row carries the strategy key the gate's duplicate check uses: the plan's ``strategy``, else
        its signal id, else the plan id (the same rule as :func:`desk.usecases.gate.strategy_key`).
        """
        rows = self._db.run(lambda conn: conn.execute(_ORDER_ACTIVITY, (since, until, since, until)).fetchall())
        return [
            OrderActivity(cid, strategy, symbol, Side(side), quantity, created.astimezone(UTC),
                          None if cancelled is None else cancelled.astimezone(UTC))
            for cid, strategy, symbol, side, quantity, created, cancelled in rows
        ]  # fmt: skip

    def _orders(self, filters: dict[str, Any]) -> list[OrderRecord]:
        where, params = _where(filters)
        rows = self._db.run(lambda conn: conn.execute(_SELECT_ORDERS.format(where=where), params).fetchall())
        return [OrderRecord.model_validate(dict(zip(_ORDER_FIELDS, row, strict=True))) for row in rows]

    def load_order(self, client_order_id: str) -> OrderRecord | None:
        found = self._orders({"client_order_id": client_order_id})
        return found[0] if found else None

    def open_orders(self, venue: str | None = None) -> list[OrderRecord]:
        """Orders in a non-terminal state, oldest update first."""
        return self._orders({"venue": venue, "state_rank <": OrderState.FILLED.rank})

    def orders_for_plan(self, plan_id: str) -> list[OrderRecord]:
        return self._orders({"plan_id": plan_id})

    # -- order events ---------------------------------------------------------------------------
    def append_order_event(self, event: Envelope) -> bool:
        """Append to the order-event log; False when ``event.id`` is already there."""
        e = event
        client_order_id = getattr(e.data, "client_order_id", None)
        params = (
            e.id,
            e.type,
            e.version,
            e.occurred_at,
            e.correlation_id,
            client_order_id,
            Jsonb(json.loads(e.to_json())),
        )
        return self._db.run(lambda conn: conn.execute(_APPEND_EVENT, params).rowcount) == 1

    def order_events(self, client_order_id: str) -> list[Envelope]:
        """The events of one order, in occurrence order (for replay through the state machine)."""
        rows = self._db.run(
            lambda conn: conn.execute(
                "SELECT envelope FROM order_events WHERE client_order_id = %s ORDER BY occurred_at, recorded_at",
                (client_order_id,),
            ).fetchall()
        )
        return [Envelope.parse(row[0]) for row in rows]

    # -- fills ----------------------------------------------------------------------------------
    def record_fill(self, fill: Fill, *, adjustment: bool = False) -> bool:
        """Insert unique on (venue, venue_trade_id); False for an identical repeat.

        Raises :class:`DuplicateFillConflict` when the key exists with different content.
        """
        f = fill
        liquidity = None if f.liquidity is None else f.liquidity.value
        params = (
            f.venue, f.venue_trade_id, f.client_order_id, f.symbol, f.side.value, f.quantity, f.price,
            f.occurred_at, f.fee, f.fee_currency, liquidity, adjustment,
        )  # fmt: skip
        where, key = _where({"venue": f.venue, "venue_trade_id": f.venue_trade_id})

        def work(conn: Connection) -> bool:
            with conn.transaction():
                if conn.execute(_INSERT_FILL, params).rowcount == 1:
                    return True
                row = conn.execute(_SELECT_FILL.format(where=where), key).fetchone()
            if row is None or _fill_from_row(row) != fill:
                raise DuplicateFillConflict(f"fill {fill.key} is already recorded with different content")
            return False

        return self._db.run(work)

    def load_fills(
        self, venue: str | None = None, symbol: str | None = None, since: datetime | None = None
    ) -> list[Fill]:
        """Fills matching the filters, oldest first (ties by venue trade id)."""
        where, params = _where({"venue": venue, "symbol": symbol, "occurred_at >=": since})
        rows = self._db.run(lambda conn: conn.execute(_SELECT_FILL.format(where=where), params).fetchall())
        return [_fill_from_row(row) for row in rows]

    def fills_for_orders(self, client_order_ids: Sequence[str]) -> list[Fill]:
        """The fills of these orders, oldest first (by the ``fills_by_order`` index: no scan of the ledger)."""
        if not client_order_ids:
            return []
        where = sql.SQL("client_order_id = ANY(%s)")
        rows = self._db.run(
            lambda conn: conn.execute(_SELECT_FILL.format(where=where), [list(client_order_ids)]).fetchall()
        )
        return [_fill_from_row(row) for row in rows]

    # -- positions ------------------------------------------------------------------------------
    def positions(self, as_of: datetime, venue: str | None = None, symbol: str | None = None) -> list[PositionRecord]:
        """Positions folded from all fills by the ``positions`` view, stamped ``as_of``."""
        where, params = _where({"venue": venue, "symbol": symbol})
        rows = self._db.run(lambda conn: conn.execute(_SELECT_POSITIONS.format(where=where), params).fetchall())
        return [
            PositionRecord(venue=v, symbol=s, quantity=q, average_price=avg, realised_pnl=pnl, as_of=as_of)
            for v, s, q, avg, pnl in rows
        ]
