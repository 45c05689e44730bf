"""The gate and the order lifecycle together, as a hypothesis state machine.

Random intents go through :func:`check_order`; accepted ones become orders that are filled, cancelled
or expired at random while the kill switch latches and releases. Invariants: the gate never accepts a
risk-increasing order while latched (checked against an independent worst-case computation), an
order's state only moves forward, and positions equal the signed sum of the fills.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from desk.domain.controls import check_order
from desk.domain.controls_config import GateConfig, GateContext, OrderRequest, ReasonCode
from desk.domain.instruments import Instrument, PrecisionMode
from desk.domain.orders import Fill, Order, OrderState, OrderType, Side, client_order_id
from desk.domain.positions import Position, position_from_fills
from desk.schemas import Quote

SYMBOL = "BTC/USDT"
BTCUSDT = Instrument(
    "binance",
    SYMBOL,
    "BTC",
    "USDT",
    PrecisionMode.TICK_SIZE,
    Decimal("0.01"),
    Decimal("0.00001"),
    min_amount=Decimal("0.00001"),
    min_notional=Decimal(5),
)
CONFIG = GateConfig(allowed_symbols=frozenset({SYMBOL}), max_open_orders_per_symbol=8, max_open_orders_total=8)
PLAN = "ldstatemachineplan"
LOT = Decimal("0.00001")

quantities = st.integers(min_value=1, max_value=200).map(lambda n: Decimal(n) / 100)


class OrderGateMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = datetime(2024, 3, 1, tzinfo=UTC)
        self.mid = Decimal(60000)
        self.latched = False
        self.orders: dict[str, Order] = {}
        self.ranks: dict[str, int] = {}
        self.fills: list[Fill] = []
        self.position = Position("binance", SYMBOL)
        self.sent = 0

    # -- helpers ------------------------------------------------------------------------------
    def _context(self) -> GateContext:
        quote = Quote(
            venue="binance",
            symbol=SYMBOL,
            ts=self.now,
            bid=self.mid - Decimal("0.01"),
            ask=self.mid + Decimal("0.01"),
            bid_size=1,
            ask_size=1,
        )
        return GateContext(
            now=self.now,
            instrument=BTCUSDT,
            quote=quote,
            equity=Decimal(10_000_000),
            average_daily_volume=Decimal(100_000),
            positions={SYMBOL: self.position.quantity},
            marks={SYMBOL: self.mid},
            open_orders=tuple(self.orders.values()),
            kill_switch_latched=self.latched,
        )

    def _working(self) -> list[Order]:
        return [o for o in self.orders.values() if not o.is_terminal]

    def _submit(self, side: Side, quantity: Decimal, market: bool, reduce_only: bool) -> tuple[OrderRequest, bool]:
        cid = client_order_id(PLAN, self.sent)
        self.sent += 1
        price = None if market else (self.mid + Decimal(side.sign) * Decimal(5))
        intent = OrderRequest(
            cid,
            "sm",
            "binance",
            SYMBOL,
            side,
            OrderType.MARKET if market else OrderType.LIMIT,
            quantity,
            price,
            reduce_only=reduce_only,
        )
        before = self.position.quantity
        working = self._working()
        decision = check_order(intent, self._context(), CONFIG)
        if decision.accepted and self.latched:
            # Independently: even if every working order on its side fills first, |position| must not grow or flip.
            same_side = sum((o.remaining_quantity for o in working if o.side is side), Decimal(0))
            worst = before + Decimal(side.sign) * (same_side + quantity)
            assert abs(worst) <= abs(before) and (worst == 0 or (worst > 0) == (before > 0)), (before, intent)
        if decision.accepted:
            sent = decision.order
            assert sent.order_type is OrderType.LIMIT and sent.limit_price is not None
            order = Order(cid, "binance", SYMBOL, side, sent.quantity, OrderType.LIMIT, sent.limit_price)
            self._track(order.accept(f"v{cid}"))
        self.now += timedelta(milliseconds=700)
        return intent, decision.accepted

    def _track(self, order: Order) -> None:
        previous = self.ranks.get(order.client_order_id, -1)
        assert order.state.rank >= previous, (order.client_order_id, order.state)
        self.ranks[order.client_order_id] = order.state.rank
        self.orders[order.client_order_id] = order

    # -- rules --------------------------------------------------------------------------------
    @rule(side=st.sampled_from(list(Side)), quantity=quantities, market=st.booleans(), reduce_only=st.booleans())
    def intent(self, side: Side, quantity: Decimal, market: bool, reduce_only: bool) -> None:
        self._submit(side, quantity, market, reduce_only)

    @precondition(lambda self: not self.position.is_flat)
    @rule(share=st.integers(min_value=1, max_value=4), market=st.booleans())
    def reduce(self, share: int, market: bool) -> None:
        # A genuine reducer (no working orders on its side): the kill switch must never be why it fails.
        side = Side.SELL if self.position.quantity > 0 else Side.BUY
        if any(o.side is side for o in self._working()):
            return
        quantity = (abs(self.position.quantity) * share / 4).quantize(LOT, rounding=ROUND_DOWN)
        if quantity * self.mid < 10:
            return
        before = len(self.orders)
        intent = OrderRequest(
            client_order_id(PLAN, self.sent), "sm", "binance", SYMBOL, side, OrderType.LIMIT, quantity, self.mid
        )
        codes = check_order(intent, self._context(), CONFIG).codes
        assert ReasonCode.KILL_SWITCH not in codes and ReasonCode.REDUCE_ONLY_INCREASES not in codes
        self._submit(side, quantity, market, reduce_only=True)
        assert len(self.orders) >= before

    @precondition(lambda self: any(not o.is_terminal for o in self.orders.values()))
    @rule(pick=st.integers(min_value=0, max_value=10**6), share=st.integers(min_value=1, max_value=4))
    def fill(self, pick: int, share: int) -> None:
        working = self._working()
        order = working[pick % len(working)]
        quantity = (order.remaining_quantity * share / 4).quantize(LOT, rounding=ROUND_DOWN)
        if quantity.is_zero():
            return
        assert order.limit_price is not None
        trade = Fill(
            "binance",
            f"t{len(self.fills):06d}",
            order.client_order_id,
            SYMBOL,
            order.side,
            quantity,
            order.limit_price,
            self.now,
        )
        self._track(order.add_fill(trade))
        self.fills.append(trade)
        self.position = self.position.apply(trade)

    @precondition(lambda self: any(not o.is_terminal for o in self.orders.values()))
    @rule(pick=st.integers(min_value=0, max_value=10**6), expire=st.booleans())
    def cancel(self, pick: int, expire: bool) -> None:
        working = self._working()
        order = working[pick % len(working)]
        if expire:
            self._track(order.expire())
        else:
            pending = order.request_cancel()
            self._track(pending)
            self._track(pending.cancel())

    @rule()
    def latch(self) -> None:
        self.latched = True

    @rule()
    def release(self) -> None:
        self.latched = False

    @rule(seconds=st.integers(min_value=1, max_value=120), move=st.integers(min_value=-300, max_value=300))
    def tick(self, seconds: int, move: int) -> None:
        self.now += timedelta(seconds=seconds)
        self.mid += Decimal(move)

    # -- invariants -----------------------------------------------------------------------------
    @invariant()
    def positions_equal_the_sum_of_fills(self) -> None:
        signed = sum((f.signed_quantity for f in self.fills), Decimal(0))
        assert self.position.quantity == signed
        assert position_from_fills(self.fills, venue="binance", symbol=SYMBOL) == self.position

    @invariant()
    def orders_hold_exactly_their_fills(self) -> None:
        for order in self.orders.values():
            mine = [f for f in self.fills if f.client_order_id == order.client_order_id]
            assert order.filled_quantity == sum((f.quantity for f in mine), Decimal(0))
            assert self.ranks[order.client_order_id] == order.state.rank
            assert order.state is not OrderState.FILLED or order.remaining_quantity.is_zero()


TestOrderGateMachine = OrderGateMachine.TestCase
