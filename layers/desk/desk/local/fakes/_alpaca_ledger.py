"""The fake Alpaca's venue side: its ledger (cash, orders, fills, positions), order matching and faults.

:class:`desk.local.fakes.alpaca.FakeAlpaca` serves these over HTTP; the fault kinds and the matching
rules are described there.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from typing import Any

__all__ = ["AlpacaMatching", "FakeAsset", "Fault", "Json"]


Json = dict[str, Any]
_OPEN = {"new", "accepted", "partially_filled", "pending_new"}


class Fault(StrEnum):
    TIMEOUT_AFTER_ACCEPT = "timeout_after_accept"
    ERROR_AFTER_ACCEPT = "error_after_accept"
    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    PARTIAL_FILL = "partial_fill"
    REJECT = "reject"


@dataclass(frozen=True)
class FakeAsset:
    symbol: str
    exchange: str = "ARCA"
    fractionable: bool = True
    tradable: bool = True


class _HttpError(Exception):
    def __init__(self, status: int, code: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, dict(headers or {})


def _s(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=UTC)


class AlpacaMatching:
    """The ledger, order matching and fault draws behind :class:`~desk.local.fakes.alpaca.FakeAlpaca`.

    A mixin: ``FakeAlpaca.__init__`` sets these attributes."""

    assets: dict[str, FakeAsset]
    cash: Decimal
    orders: dict[str, Json]
    fills: list[Json]
    positions: dict[str, tuple[Decimal, Decimal]]
    quotes: dict[str, tuple[Decimal, Decimal, Decimal]]
    _rng: random.Random
    _rates: dict[Fault, float]
    _queued: dict[str, deque[Fault]]
    _now: datetime
    _lock: threading.RLock

    # ------------------------------------------------------------------ test controls

    def queue_fault(self, operation: str, fault: Fault, times: int = 1) -> None:
        """Apply ``fault`` to the next ``times`` calls of ``operation`` (``create_order``, ``bars``...)."""
        with self._lock:
            self._queued.setdefault(operation, deque()).extend([fault] * times)

    def set_quote(self, symbol: str, bid: Decimal, ask: Decimal, size: Decimal = Decimal(100)) -> None:
        """Move the touch and fill every resting limit order it makes marketable."""
        with self._lock:
            self.quotes[symbol] = (bid, ask, size)
            for order in list(self.orders.values()):
                if order["symbol"] == symbol and order["status"] in _OPEN:
                    self._match(order, partial=False)

    def order_by_client_id(self, client_order_id: str) -> Json | None:
        with self._lock:
            return next((o for o in self.orders.values() if o["client_order_id"] == client_order_id), None)

    # ------------------------------------------------------------------ internals

    def _tick(self) -> datetime:
        self._now += timedelta(milliseconds=1)  # deterministic, strictly increasing venue time
        return self._now

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def fault(self, operation: str) -> Fault | None:
        with self._lock:
            queued = self._queued.get(operation)
            if queued:
                return queued.popleft()
            if operation == "create_order":
                for fault, rate in self._rates.items():
                    if self._rng.random() < rate:
                        return fault
        return None

    def _asset(self, symbol: str) -> FakeAsset:
        if symbol not in self.assets:
            raise _HttpError(404, 40410000, f'asset "{symbol}" not found')
        return self.assets[symbol]

    def _held(self) -> Decimal:
        held = Decimal(0)
        for o in self.orders.values():
            if o["side"] == "buy" and o["status"] in _OPEN:
                price = Decimal(o["limit_price"]) if o["limit_price"] else self.quotes[o["symbol"]][1]
                held += (Decimal(o["qty"]) - Decimal(o["filled_qty"])) * price
        return held

    def _account(self, *_: object) -> tuple[int, Any, None]:
        power = self.cash - self._held()
        return 200, {"id": "00000000-0000-4000-8000-000000000001", "account_number": "PA0FAKE", "status": "ACTIVE",
                     "currency": "USD", "cash": _s(self.cash), "buying_power": _s(power),
                     "non_marginable_buying_power": _s(power), "equity": _s(self.cash),
                     "portfolio_value": _s(self.cash),
                     "pattern_day_trader": False, "trading_blocked": False, "account_blocked": False}, None  # fmt: skip

    def _positions(self, *_: object) -> tuple[int, Any, None]:
        out = []
        for symbol, (qty, avg) in self.positions.items():
            if qty:
                bid = self.quotes[symbol][0]
                out.append({"asset_id": str(uuid.uuid5(uuid.NAMESPACE_URL, symbol)), "symbol": symbol,
                            "exchange": self.assets[symbol].exchange, "asset_class": "us_equity", "qty": _s(qty),
                            "qty_available": _s(qty), "avg_entry_price": _s(avg), "side": "long",
                            "cost_basis": _s(qty * avg), "market_value": _s(qty * bid),
                            "current_price": _s(bid)})  # fmt: skip
        return 200, out, None

    # ------------------------------------------------------------------ orders

    def _create(self, _: Mapping[str, str], body: Json | None) -> tuple[int, Any, Fault | None]:
        fault = self.fault("create_order")
        if fault is Fault.RATE_LIMIT:
            raise _HttpError(429, 42910000, "rate limit exceeded", {"Retry-After": "1"})
        if fault is Fault.SERVER_ERROR:
            raise _HttpError(503, 50300000, "service unavailable")
        if fault is Fault.REJECT:
            raise _HttpError(422, 42210000, "order rejected (fault injection)")
        body = body or {}
        client_id = str(body.get("client_order_id") or self._uuid())
        if self.order_by_client_id(client_id) is not None:
            raise _HttpError(422, 40010001, "client_order_id must be unique")
        asset = self._asset(str(body.get("symbol")))
        qty, limit = Decimal(str(body["qty"])), body.get("limit_price")
        price = None if limit is None else Decimal(str(limit))
        if qty <= 0 or (qty != qty.to_integral_value() and not asset.fractionable):
            raise _HttpError(422, 40010001, f"qty {qty} is not valid for {asset.symbol}")
        if price is not None and price.as_tuple().exponent < (-2 if price >= 1 else -4):  # type: ignore[operator]
            raise _HttpError(422, 42210000, "sub-penny increment does not fulfill minimum pricing criteria")
        side = str(body["side"])
        reference = price if price is not None else self.quotes[asset.symbol][1]
        if side == "buy" and qty * reference > self.cash - self._held():
            raise _HttpError(403, 40310000, "insufficient buying power")
        if side == "sell" and qty > self.positions.get(asset.symbol, (Decimal(0), Decimal(0)))[0]:
            raise _HttpError(403, 40310000, f"insufficient qty available for order (requested: {_s(qty)})")
        now = _time(self._tick())
        order = {"id": self._uuid(), "client_order_id": client_id, "created_at": now, "updated_at": now,
                 "submitted_at": now, "filled_at": None, "canceled_at": None, "expired_at": None, "failed_at": None,
                 "asset_id": str(uuid.uuid5(uuid.NAMESPACE_URL, asset.symbol)), "symbol": asset.symbol,
                 "asset_class": "us_equity", "notional": None, "qty": _s(qty), "filled_qty": "0",
                 "filled_avg_price": None, "order_class": "", "order_type": body["type"], "type": body["type"],
                 "side": side, "time_in_force": body["time_in_force"], "limit_price": limit, "stop_price": None,
                 "status": "new", "extended_hours": False, "legs": None}  # fmt: skip
        self.orders[order["id"]] = order
        self._match(order, partial=fault is Fault.PARTIAL_FILL)
        after = fault if fault in (Fault.TIMEOUT_AFTER_ACCEPT, Fault.ERROR_AFTER_ACCEPT) else None
        return 200, dict(order), after

    def _match(self, order: Json, *, partial: bool) -> None:
        bid, ask, _ = self.quotes[order["symbol"]]
        buy = order["side"] == "buy"
        touch = ask if buy else bid
        limit = order["limit_price"]
        if limit is not None and (Decimal(limit) < touch if buy else Decimal(limit) > touch):
            return  # rests until set_quote crosses it
        remaining = Decimal(order["qty"]) - Decimal(order["filled_qty"])
        qty = (remaining / 2).quantize(Decimal(1), rounding=ROUND_DOWN) if partial else remaining
        if qty <= 0:
            return
        now = self._tick()
        filled = Decimal(order["filled_qty"]) + qty
        previous = Decimal(order["filled_avg_price"] or 0) * Decimal(order["filled_qty"])
        order["filled_avg_price"] = _s((previous + qty * touch) / filled)
        order["filled_qty"] = _s(filled)
        order["status"] = "filled" if filled == Decimal(order["qty"]) else "partially_filled"
        order["updated_at"] = _time(now)
        if order["status"] == "filled":
            order["filled_at"] = _time(now)
        self.cash += -qty * touch if buy else qty * touch
        held, avg = self.positions.get(order["symbol"], (Decimal(0), Decimal(0)))
        new_qty = held + (qty if buy else -qty)
        avg = (held * avg + qty * touch) / new_qty if buy else (avg if new_qty else Decimal(0))
        self.positions[order["symbol"]] = (new_qty, avg)
        stamp = now.strftime("%Y%m%d%H%M%S") + f"{now.microsecond // 1000:03d}"
        self.fills.append({"id": f"{stamp}::{self._uuid()}", "activity_type": "FILL", "transaction_time": _time(now),
                           "type": "fill" if order["status"] == "filled" else "partial_fill", "price": _s(touch),
                           "qty": _s(qty), "side": order["side"], "symbol": order["symbol"],
                           "leaves_qty": _s(Decimal(order["qty"]) - filled), "order_id": order["id"],
                           "cum_qty": _s(filled), "order_status": order["status"]})  # fmt: skip

    def _get_order(self, order_id: str) -> tuple[int, Any, None]:
        if order_id not in self.orders:
            raise _HttpError(404, 40410000, "order not found")
        return 200, dict(self.orders[order_id]), None

    def _order_by_client_id(self, query: Mapping[str, str], _: object) -> tuple[int, Any, None]:
        order = self.order_by_client_id(query.get("client_order_id", ""))
        if order is None:
            raise _HttpError(404, 40410000, "order not found")
        return 200, dict(order), None

    def _cancel(self, order_id: str) -> tuple[int, Any, None]:
        order = self.orders.get(order_id)
        if order is None:
            raise _HttpError(404, 40410000, "order not found")
        if order["status"] not in _OPEN:
            raise _HttpError(422, 42210000, f"order is not cancelable (status {order['status']})")
        order["status"], order["canceled_at"] = "canceled", _time(self._tick())
        order["updated_at"] = order["canceled_at"]
        return 204, None, None

    def _list_orders(self, query: Mapping[str, str], _: object) -> tuple[int, Any, None]:
        status = query.get("status", "open")
        symbols = set(query["symbols"].split(",")) if query.get("symbols") else None
        chosen = [
            o for o in self.orders.values() if (status == "all") or ((o["status"] in _OPEN) == (status == "open"))
        ]
        chosen = [o for o in chosen if symbols is None or o["symbol"] in symbols]
        if query.get("direction", "desc") == "desc":
            chosen.reverse()
        return 200, [dict(o) for o in chosen[: int(query.get("limit", 50))]], None

    def _activities(self, query: Mapping[str, str], _: object) -> tuple[int, Any, None]:
        after = _parse_time(query["after"]) if "after" in query else None
        chosen = [f for f in self.fills if after is None or _parse_time(f["transaction_time"]) > after]
        if query.get("direction", "desc") == "desc":
            chosen.reverse()
        token = query.get("page_token")
        if token:
            ids = [f["id"] for f in chosen]
            chosen = chosen[ids.index(token) + 1 :] if token in ids else []
        return 200, [dict(f) for f in chosen[: int(query.get("page_size", 100))]], None
