"""The fake Binance's venue side: its ledger, order matching and seeded fault plan.

:class:`desk.local.fakes.binance.FakeBinance` serves these over HTTP; the rules (duplicate client ids
among open orders, filter checks, balance last, taker fills at the touch) are described there.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from typing import Any

__all__ = [
    "DEFAULT_MARKETS",
    "ORDER_ROUTE",
    "BinanceMatching",
    "FakeMarket",
    "Fault",
    "FaultPlan",
    "Ledger",
    "LedgerFill",
    "LedgerOrder",
    "Payload",
    "VenueReject",
]

Payload = dict[str, Any] | list[Any]

ORDER_ROUTE = "POST /api/v3/order"


class Fault(StrEnum):
    TIMEOUT_AFTER_ACCEPT = "timeout_after_accept"
    DROP_AFTER_ACCEPT = "drop_after_accept"
    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    PARTIAL_FILL = "partial_fill"
    REJECT_BALANCE = "reject_balance"
    REJECT_FILTER = "reject_filter"


@dataclass
class FaultPlan:
    """Which faults to inject. ``queue`` applies to the next requests on a route ("METHOD /path");
    ``rates`` are per-placement probabilities drawn from ``Random(seed)``, so a run is reproducible."""

    seed: int = 0
    rates: Mapping[Fault, float] = field(default_factory=dict)
    retry_after: int = 3
    hold_seconds: float = 2.0  # how long a "timeout" response is withheld; must exceed the client timeout
    injected: list[tuple[str, Fault]] = field(default_factory=list)
    _queued: dict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque))

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - fault injection, not cryptography

    def queue(self, route: str, *faults: Fault) -> None:
        self._queued[route].extend(faults)

    def take(self, route: str) -> Fault | None:
        fault: Fault | None = None
        if self._queued[route]:
            fault = self._queued[route].popleft()
        elif route == ORDER_ROUTE and self.rates:
            draw, edge = self._rng.random(), 0.0
            for candidate, rate in self.rates.items():
                edge += rate
                if draw < edge:
                    fault = candidate
                    break
        if fault is not None:
            self.injected.append((route, fault))
        return fault


@dataclass(frozen=True)
class FakeMarket:
    """One spot symbol with Binance's real-looking filters and a static top of book."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    bid: Decimal
    ask: Decimal
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("1000000")
    depth_qty: Decimal = Decimal("2.5")
    status: str = "TRADING"  # exchangeInfo's symbol status; BREAK / HALT refuse new orders ("Market is closed.")


def _spot(symbol: str, base: str, quote: str, numbers: str) -> FakeMarket:
    """tick, step, min qty, max qty, min notional, bid, ask — as Binance prints them."""
    tick, step, min_qty, max_qty, min_notional, bid, ask = (Decimal(x) for x in numbers.split())
    return FakeMarket(symbol, base, quote, tick, step, min_qty, max_qty, min_notional, bid, ask)


DEFAULT_MARKETS = (
    _spot("BTCUSDT", "BTC", "USDT", "0.01 0.00001 0.00001 9000 5 8035.87 8035.89"),
    _spot("ETHUSDT", "ETH", "USDT", "0.01 0.0001 0.0001 9000 5 176.52 176.53"),
)


@dataclass
class LedgerOrder:
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    quantity: Decimal
    price: Decimal | None
    time_ms: int
    status: str = "NEW"
    executed: Decimal = Decimal(0)
    quote_executed: Decimal = Decimal(0)
    lock_per_unit: Decimal = Decimal(0)  # quote per unit for buys (incl. fee), 1 base for sells
    update_ms: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


@dataclass(frozen=True)
class LedgerFill:
    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    maker: bool


@dataclass
class Ledger:
    """The venue's truth. Guard every access with ``lock`` (the server is threaded)."""

    balances: dict[str, list[Decimal]]  # asset -> [free, locked]
    orders: list[LedgerOrder] = field(default_factory=list)
    fills: list[LedgerFill] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def by_client_id(self, client_order_id: str) -> list[LedgerOrder]:
        with self.lock:
            return [o for o in self.orders if o.client_order_id == client_order_id]


class VenueReject(Exception):
    """A Binance error answer (HTTP status, Binance code, message)."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


def _d(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


class BinanceMatching:
    """Order placement, matching and the order/account endpoints, against :class:`Ledger`.

    A mixin for :class:`~desk.local.fakes.binance.FakeBinance`, which sets these attributes."""

    markets: dict[str, FakeMarket]
    ledger: Ledger
    fee_rate: Decimal
    clock_ms: Callable[[], int]
    _ids: Iterator[int]

    def _market(self, params: Mapping[str, str]) -> FakeMarket:
        market = self.markets.get(params.get("symbol", ""))
        if market is None:
            raise VenueReject(400, -1121, "Invalid symbol.")
        return market

    # ---------------------------------------------------------------- orders
    def _new_order(self, params: dict[str, str], fault: Fault | None = None) -> Payload:
        m, side, kind = self._market(params), params.get("side", ""), params.get("type", "")
        if side not in ("BUY", "SELL") or kind not in ("LIMIT", "MARKET"):
            raise VenueReject(400, -1106, "Parameter side/type invalid.")
        qty = Decimal(params["quantity"])
        price = Decimal(params["price"]) if kind == "LIMIT" else None
        client_id = params.get("newClientOrderId") or f"fake-{next(self._ids)}"
        with self.ledger.lock:
            if any(o.is_open for o in self.ledger.by_client_id(client_id)):
                raise VenueReject(400, -2010, "Duplicate order sent.")
            if m.status != "TRADING":
                raise VenueReject(400, -1013, "Market is closed.")
            self._check_filters(m, qty, price, fault)
            touch = m.ask if side == "BUY" else m.bid
            reference = price if price is not None else touch
            lock_per_unit = reference * (1 + self.fee_rate) if side == "BUY" else Decimal(1)
            asset = m.quote if side == "BUY" else m.base
            free, _locked = self.ledger.balances.setdefault(asset, [Decimal(0), Decimal(0)])
            if fault is Fault.REJECT_BALANCE or free < qty * lock_per_unit:
                raise VenueReject(400, -2010, "Account has insufficient balance for requested action.")
            now = self.clock_ms()
            order = LedgerOrder(next(self._ids), client_id, m.symbol, side, kind, params.get("timeInForce", "GTC"),
                                qty, price, now, lock_per_unit=lock_per_unit, update_ms=now)  # fmt: skip
            self.ledger.orders.append(order)
            self._move(asset, qty * lock_per_unit)
            marketable = price is None or (price >= m.ask if side == "BUY" else price <= m.bid)
            if marketable:
                fill_qty = qty
                if fault is Fault.PARTIAL_FILL:
                    fill_qty = max((qty / 2).quantize(m.step_size, rounding=ROUND_DOWN), m.step_size)
                self._fill(order, fill_qty, touch, maker=False)
                if price is None and order.is_open:  # a market order's unfilled rest expires
                    self._close(order, "EXPIRED")
            return self._order_json(order, fills=True)

    def _check_filters(self, m: FakeMarket, qty: Decimal, price: Decimal | None, fault: Fault | None) -> None:
        if price is not None and (price < m.min_price or price > m.max_price or price % m.tick_size):
            raise VenueReject(400, -1013, "Filter failure: PRICE_FILTER")
        if qty < m.min_qty or qty > m.max_qty or qty % m.step_size:
            raise VenueReject(400, -1013, "Filter failure: LOT_SIZE")
        if fault is Fault.REJECT_FILTER or qty * (price or m.ask) < m.min_notional:
            raise VenueReject(400, -1013, "Filter failure: NOTIONAL")

    def _move(self, asset: str, amount: Decimal) -> None:
        """Lock ``amount`` of ``asset`` (negative: release it)."""
        balance = self.ledger.balances[asset]
        balance[0] -= amount
        balance[1] += amount

    def _fill(self, order: LedgerOrder, qty: Decimal, price: Decimal, *, maker: bool = True) -> None:
        m = self.markets[order.symbol]
        quote_qty = qty * price
        fee = (quote_qty * self.fee_rate).quantize(Decimal("0.00000001"))
        balances = self.ledger.balances
        if order.side == "BUY":
            self._move(m.quote, -qty * order.lock_per_unit)
            balances[m.quote][0] -= quote_qty + fee
            balances.setdefault(m.base, [Decimal(0), Decimal(0)])[0] += qty
        else:
            self._move(m.base, -qty)
            balances[m.base][0] -= qty
            balances.setdefault(m.quote, [Decimal(0), Decimal(0)])[0] += quote_qty - fee
        now = self.clock_ms()
        fill = LedgerFill(
            next(self._ids), order.order_id, order.symbol, order.side, price, qty, fee, m.quote, now, maker
        )
        self.ledger.fills.append(fill)
        order.executed += qty
        order.quote_executed += quote_qty
        order.status = "FILLED" if order.executed == order.quantity else "PARTIALLY_FILLED"
        order.update_ms = now

    def _close(self, order: LedgerOrder, status: str) -> None:
        m = self.markets[order.symbol]
        self._move(m.quote if order.side == "BUY" else m.base, -(order.quantity - order.executed) * order.lock_per_unit)
        order.status, order.update_ms = status, self.clock_ms()

    def _find(self, params: Mapping[str, str], *, open_only: bool = False) -> LedgerOrder | None:
        m = self._market(params)
        for order in reversed(self.ledger.orders):
            if order.symbol != m.symbol or (open_only and not order.is_open):
                continue
            if order.client_order_id == params.get("origClientOrderId") or str(order.order_id) == params.get("orderId"):
                return order
        return None

    def _get_order(self, params: dict[str, str]) -> Payload:
        with self.ledger.lock:
            order = self._find(params)
            if order is None:
                raise VenueReject(400, -2013, "Order does not exist.")
            return self._order_json(order)

    def _cancel_order(self, params: dict[str, str]) -> Payload:
        with self.ledger.lock:
            order = self._find(params, open_only=True)
            if order is None:  # Binance answers the same for unknown and already-closed orders
                raise VenueReject(400, -2011, "Unknown order sent.")
            self._close(order, "CANCELED")
            return self._order_json(order) | {"origClientOrderId": order.client_order_id}

    def _open_orders(self, params: dict[str, str]) -> Payload:
        symbol = self._market(params).symbol if "symbol" in params else None
        with self.ledger.lock:
            return [self._order_json(o) for o in self.ledger.orders if o.is_open and symbol in (None, o.symbol)]

    def _my_trades(self, params: dict[str, str]) -> Payload:
        m = self._market(params)
        start, end = int(params.get("startTime", 0)), int(params.get("endTime", 2**62))
        from_id, limit = int(params.get("fromId", 0)), min(int(params.get("limit", 500)), 1000)
        with self.ledger.lock:
            rows = [f for f in self.ledger.fills if f.symbol == m.symbol and start <= f.time_ms <= end]
            rows = [f for f in rows if f.trade_id >= from_id and params.get("orderId") in (None, str(f.order_id))]
        return [
            {"symbol": f.symbol, "id": f.trade_id, "orderId": f.order_id, "orderListId": -1, "price": _d(f.price),
             "qty": _d(f.qty), "quoteQty": _d(f.qty * f.price), "commission": _d(f.commission),
             "commissionAsset": f.commission_asset, "time": f.time_ms, "isBuyer": f.side == "BUY",
             "isMaker": f.maker, "isBestMatch": True}
            for f in rows[:limit]
        ]  # fmt: skip

    def _account(self, params: dict[str, str]) -> Payload:
        with self.ledger.lock:
            balances = [{"asset": a, "free": _d(v[0]), "locked": _d(v[1])} for a, v in self.ledger.balances.items()]
        return {"makerCommission": 10, "takerCommission": 10, "canTrade": True, "canWithdraw": True,
                "canDeposit": True, "updateTime": self.clock_ms(), "accountType": "SPOT", "balances": balances,
                "permissions": ["SPOT"]}  # fmt: skip

    def _order_json(self, o: LedgerOrder, *, fills: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "symbol": o.symbol, "orderId": o.order_id, "orderListId": -1, "clientOrderId": o.client_order_id,
            "transactTime": o.update_ms, "price": _d(o.price or Decimal(0)), "origQty": _d(o.quantity),
            "executedQty": _d(o.executed), "cummulativeQuoteQty": _d(o.quote_executed), "status": o.status,
            "timeInForce": o.time_in_force, "type": o.type, "side": o.side, "time": o.time_ms,
            "updateTime": o.update_ms, "isWorking": o.is_open, "workingTime": o.time_ms,
            "origQuoteOrderQty": "0", "selfTradePreventionMode": "EXPIRE_MAKER",
        }  # fmt: skip
        if fills:
            body["fills"] = [
                {"price": _d(f.price), "qty": _d(f.qty), "commission": _d(f.commission),
                 "commissionAsset": f.commission_asset, "tradeId": f.trade_id}
                for f in self.ledger.fills if f.order_id == o.order_id
            ]  # fmt: skip
        return body
