"""The paper venue: book walking, partial fills, fees from quant.costs, resting limits, idempotency."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache

from hypothesis import given
from hypothesis import strategies as st

from desk.domain.instruments import DECIMAL_CONTEXT, Instrument, PrecisionMode, decimal_sum
from desk.domain.orders import Liquidity, OrderState, OrderType, Side, TimeInForce
from desk.local.catalogue import tick_lines
from desk.schemas.market import BookLevel, OrderBook, Quote
from desk.schemas.trading import OrderIntent
from desk.venues.errors import InsufficientFunds, OrderRejected
from desk.venues.paper import ImpactModel, PaperConfig, PaperVenue
from quant.costs import FeeSchedule

T0 = datetime(2024, 8, 8, 23, 54, tzinfo=UTC)
PLAN = "ld" + "b" * 24
BTC = Instrument(
    venue="paper",
    symbol="BTC/USDT",
    base="BTC",
    quote="USDT",
    precision_mode=PrecisionMode.TICK_SIZE,
    price_precision=Decimal("0.01"),
    amount_precision=Decimal("0.00001"),
)
TAKER_FEES = FeeSchedule.flat(maker_bps=-1.0, taker_bps=7.5)


class FixedClock:
    def now(self) -> datetime:
        return T0


@cache
def binance_snapshot() -> OrderBook:
    """The REST depth snapshot at the start of hftbacktest's BTCUSDT capture (real Binance levels)."""
    for line in tick_lines("ticks/hftbacktest_spot_btcusdt_20240808.gz"):
        _, _, payload = line.partition(" ")
        if '"lastUpdateId"' in payload:
            raw = json.loads(payload)
            return OrderBook(
                venue="paper",
                symbol="BTC/USDT",
                ts=T0,
                bids=tuple(BookLevel(price=p, quantity=q) for p, q in raw["bids"] if Decimal(q) > 0),
                asks=tuple(BookLevel(price=p, quantity=q) for p, q in raw["asks"] if Decimal(q) > 0),
                sequence=raw["lastUpdateId"],
            )
    raise AssertionError("the capture has no depth snapshot")


def venue(usdt: str = "10000000", btc: str = "0", **config: object) -> PaperVenue:
    balances = {"USDT": Decimal(usdt), "BTC": Decimal(btc)}
    return PaperVenue([BTC], clock=FixedClock(), config=PaperConfig(balances=balances, **config))  # type: ignore[arg-type]


def order(
    slice_no: int,
    qty: Decimal | str,
    *,
    side: Side = Side.BUY,
    limit: str | None = None,
    tif: TimeInForce = TimeInForce.GTC,
) -> OrderIntent:
    return OrderIntent(
        client_order_id=f"{PLAN}-{slice_no}",
        plan_id=PLAN,
        slice_no=slice_no,
        venue="paper",
        symbol="BTC/USDT",
        side=side,
        order_type=OrderType.LIMIT if limit else OrderType.MARKET,
        quantity=Decimal(qty),
        limit_price=None if limit is None else Decimal(limit),
        time_in_force=tif,
    )


def book(asks: list[tuple[str, str]], bids: list[tuple[str, str]], at: datetime = T0) -> OrderBook:
    return OrderBook(
        venue="paper",
        symbol="BTC/USDT",
        ts=at,
        asks=tuple(BookLevel(price=p, quantity=q) for p, q in asks),
        bids=tuple(BookLevel(price=p, quantity=q) for p, q in bids),
    )


def test_a_marketable_buy_walks_the_real_binance_levels() -> None:
    # Given the real snapshot and a buy that needs the first three ask levels and part of the fourth
    snapshot = binance_snapshot()
    paper = venue()
    paper.on_book(snapshot)
    first = snapshot.asks[:4]
    qty = decimal_sum(level.quantity for level in first[:3]) + Decimal("0.00001")
    # When it is placed
    record = paper.create_order(order(0, qty))
    # Then it filled level by level at each level's price, as the taker
    fills = paper.fetch_fills(T0)
    assert [(f.price, f.quantity) for f in fills] == [(lv.price, lv.quantity) for lv in first[:3]] + [
        (first[3].price, Decimal("0.00001"))
    ]
    assert {f.liquidity for f in fills} == {Liquidity.TAKER}
    assert record.state is OrderState.FILLED
    assert record.average_price == DECIMAL_CONTEXT.divide(decimal_sum(f.notional for f in fills), qty)


def test_a_thin_book_fills_partially_and_the_rest_fills_on_the_next_quote() -> None:
    # Given 1.5 BTC offered in total
    paper = venue()
    paper.on_book(book([("100.00", "1"), ("100.50", "0.5")], [("99.00", "1")]))
    # When 2 BTC are bought at market
    record = paper.create_order(order(1, "2"))
    # Then 1.5 fill and the order keeps working
    assert (record.state, record.filled_quantity) == (OrderState.PARTIALLY_FILLED, Decimal("1.5"))
    # When a later quote offers more, Then the remainder fills at its ask
    later = T0 + timedelta(seconds=1)
    paper.on_quote(
        Quote(venue="paper", symbol="BTC/USDT", ts=later, bid=Decimal(101), ask=Decimal(102), bid_size=1, ask_size=3)
    )
    done = paper.fetch_order_by_client_id("BTC/USDT", f"{PLAN}-1")
    assert done is not None and done.state is OrderState.FILLED
    assert paper.fetch_fills(later)[-1].price == Decimal(102)


def test_fees_equal_the_fee_schedule_and_move_the_balance() -> None:
    # Given a 7.5 bps taker schedule
    paper = venue(usdt="1000", fees=TAKER_FEES)
    paper.on_book(book([("100.00", "1"), ("101.00", "1")], [("99.00", "1")]))
    # When 1.5 BTC are bought
    paper.create_order(order(2, "1.5"))
    fills = paper.fetch_fills(T0)
    # Then each fee is FeeSchedule.fee on the fill's notional, charged in USDT
    assert [f.fee for f in fills] == [Decimal(repr(TAKER_FEES.fee(float(f.notional), "taker"))) for f in fills]
    spent = decimal_sum(f.notional + f.fee for f in fills)
    balances = paper.fetch_balances()
    assert balances["USDT"].total == Decimal(1000) - spent
    assert balances["BTC"].total == Decimal("1.5")


def test_a_resting_limit_fills_as_maker_when_the_quote_crosses() -> None:
    # Given a bid below the market
    paper = venue(fees=TAKER_FEES)
    paper.on_book(book([("100.00", "1")], [("99.00", "1")]))
    resting = paper.create_order(order(3, "0.4", limit="98.50"))
    assert resting.state is OrderState.ACCEPTED
    assert paper.fetch_balances()["USDT"].used == Decimal("0.4") * Decimal("98.50")
    # When a quote offers below the limit
    later = T0 + timedelta(minutes=1)
    paper.on_quote(
        Quote(venue="paper", symbol="BTC/USDT", ts=later, bid=Decimal(98), ask=Decimal("98.40"), bid_size=1, ask_size=1)
    )
    # Then it fills at its own limit, as the maker, with the maker rebate
    (fill,) = paper.fetch_fills(T0)
    assert (fill.price, fill.quantity, fill.liquidity) == (Decimal("98.50"), Decimal("0.4"), Liquidity.MAKER)
    assert fill.fee == Decimal(repr(TAKER_FEES.fee(float(fill.notional), "maker"))) < 0


def test_a_duplicate_client_order_id_returns_the_same_order() -> None:
    # Given a placed order
    paper = venue()
    paper.on_book(book([("100.00", "5")], [("99.00", "5")]))
    first = paper.create_order(order(4, "1"))
    # When it is sent again, Then the same order comes back and nothing fills twice
    assert paper.create_order(order(4, "1")) == first
    assert len(paper.fetch_fills(T0)) == 1


def test_ioc_cancels_what_the_book_cannot_fill() -> None:
    paper = venue()
    paper.on_book(book([("100.00", "1")], [("99.00", "1")]))
    record = paper.create_order(order(5, "3", limit="100.00", tif=TimeInForce.IOC))
    assert (record.state, record.filled_quantity) == (OrderState.CANCELLED, Decimal(1))


def test_a_buy_beyond_the_free_balance_is_refused() -> None:
    paper = venue(usdt="50")
    paper.on_book(book([("100.00", "5")], [("99.00", "5")]))
    try:
        paper.create_order(order(6, "1"))
    except InsufficientFunds:
        assert paper.fetch_open_orders() == []
    else:
        raise AssertionError("a 100 USDT buy with 50 USDT free must be refused")


def test_impact_moves_prices_against_the_trader() -> None:
    # Given square-root impact with an ADV of 100 BTC and 2% daily volatility
    impact = ImpactModel(adv={"BTC/USDT": 100.0}, daily_vol={"BTC/USDT": 0.02}, c=1.0)
    paper = venue(impact=impact)
    paper.on_book(book([("100.00", "4")], [("99.00", "4")]))
    # When 4 BTC are bought, Then the price is 100 × (1 + 0.02 × √(4/100)) = 100.40
    paper.create_order(order(7, "4"))
    assert paper.fetch_fills(T0)[0].price == Decimal("100.40")


def test_the_same_seed_reproduces_the_same_ids() -> None:
    runs = []
    for _ in range(2):
        paper = venue(seed=42)
        paper.on_book(book([("100.00", "5")], [("99.00", "5")]))
        paper.create_order(order(8, "1"))
        runs.append([f.venue_trade_id for f in paper.fetch_fills(T0)])
    assert runs[0] == runs[1]


level = st.tuples(st.integers(1, 50), st.integers(1, 300))  # (ticks away from 100, size in 0.01 BTC)
step = st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 400), st.lists(level, min_size=0, max_size=4))


@given(st.lists(step, min_size=1, max_size=12))
def test_fills_never_exceed_orders_and_sum_to_the_position(
    steps: list[tuple[Side, int, list[tuple[int, int]]]],
) -> None:
    # Given any sequence of books and market orders (sells only of what is held)
    paper = venue(btc="10")
    for i, (side, size, levels) in enumerate(steps):
        at = T0 + timedelta(seconds=i)
        asks = sorted({(Decimal(100) + Decimal(k) / 100, Decimal(q) / 100) for k, q in levels})
        asks = [a for j, a in enumerate(asks) if j == 0 or a[0] != asks[j - 1][0]]
        paper.on_book(book([(str(p), str(q)) for p, q in asks], [("99.00", "2")], at))
        try:
            paper.create_order(order(i, Decimal(size) / 100, side=side))
        except (InsufficientFunds, OrderRejected):  # nothing held to sell, or no offer to price a buy
            continue
    # Then no order is overfilled, and the position equals the signed sum of fills
    fills = paper.fetch_fills(T0)
    for record in [paper.fetch_order_by_client_id("BTC/USDT", f"{PLAN}-{i}") for i in range(len(steps))]:
        if record is not None:
            mine = decimal_sum(f.quantity for f in fills if f.client_order_id == record.client_order_id)
            assert mine == record.filled_quantity <= record.quantity
    positions = paper.fetch_positions(["BTC/USDT"])
    assert positions[0].quantity == decimal_sum(f.signed_quantity for f in fills)
    assert paper.fetch_balances()["BTC"].total == Decimal(10) + positions[0].quantity
