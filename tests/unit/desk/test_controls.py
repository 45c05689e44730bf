"""The pre-trade gate: every check passing and failing, market → collared limit, all reasons reported."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from desk.domain.controls import check_order, collar_price, correlation_clusters, is_risk_reducing
from desk.domain.controls_config import (
    AssetClass,
    GateConfig,
    GateContext,
    OrderRequest,
    PreTradeRejected,
    ReasonCode,
    RecentIntent,
)
from desk.domain.errors import InvalidOrder
from desk.domain.instruments import Instrument, PrecisionMode
from desk.domain.orders import Order, OrderState, OrderType, Side, TimeInForce, client_order_id
from desk.schemas import CorrelationSnapshot, OrderIntent, Quote

NOW = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
PLAN = "ldaaaaaaaaaaaaaaaaaaaaaaaa"

# Binance BTC/USDT (TICK_SIZE mode), as ccxt describes it.
BTCUSDT = Instrument(
    venue="binance",
    symbol="BTC/USDT",
    base="BTC",
    quote="USDT",
    precision_mode=PrecisionMode.TICK_SIZE,
    price_precision=Decimal("0.01"),
    amount_precision=Decimal("0.00001"),
    min_amount=Decimal("0.00001"),
    max_amount=Decimal("9000"),
    min_price=Decimal("0.01"),
    max_price=Decimal("1000000"),
    min_notional=Decimal("5"),
    venue_symbol="BTCUSDT",
)
# Alpaca AAPL: cents, whole shares.
AAPL = Instrument(
    venue="alpaca",
    symbol="AAPL",
    base="AAPL",
    quote="USD",
    precision_mode=PrecisionMode.DECIMAL_PLACES,
    price_precision=Decimal(2),
    amount_precision=Decimal(0),
    min_amount=Decimal(1),
)
CONFIG = GateConfig(allowed_symbols=frozenset({"BTC/USDT", "ETH/USDT", "AAPL"}))


def btc_quote(age: timedelta = timedelta(milliseconds=300), bid: str = "60000.00", ask: str = "60000.02") -> Quote:
    return Quote(
        venue="binance", symbol="BTC/USDT", ts=NOW - age, bid=Decimal(bid), ask=Decimal(ask), bid_size=1, ask_size=1
    )


def aapl_quote(age: timedelta = timedelta(seconds=1)) -> Quote:
    return Quote(
        venue="alpaca",
        symbol="AAPL",
        ts=NOW - age,
        bid=Decimal("189.98"),
        ask=Decimal("190.01"),
        bid_size=100,
        ask_size=100,
    )


def request(**changes: Any) -> OrderRequest:
    base = OrderRequest(
        client_order_id=client_order_id(PLAN, 0),
        strategy="trend",
        venue="binance",
        symbol="BTC/USDT",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal("0.1"),
        limit_price=Decimal("60010.00"),
    )
    return replace(base, **changes)


def context(**changes: Any) -> GateContext:
    base = GateContext(
        now=NOW,
        instrument=BTCUSDT,
        quote=btc_quote(),
        equity=Decimal(1_000_000),
        average_daily_volume=Decimal(20_000),
        marks={"BTC/USDT": Decimal(60000), "ETH/USDT": Decimal(3500)},
    )
    return replace(base, **changes)


def working(symbol: str = "BTC/USDT", side: Side = Side.BUY, qty: str = "0.1", n: int = 1) -> Order:
    return Order(
        client_order_id=client_order_id("ldworking", n),
        venue="binance",
        symbol=symbol,
        side=side,
        quantity=Decimal(qty),
        limit_price=Decimal(60000) if symbol == "BTC/USDT" else Decimal(3500),
        state=OrderState.ACCEPTED,
    )


def test_a_plain_order_inside_every_limit_is_accepted_unchanged() -> None:
    # Given a small BTC limit buy near the mid, When gated, Then it passes with no reasons and no change
    decision = check_order(request(), context(), CONFIG)
    assert decision.accepted and decision.reasons == ()
    assert decision.order == request() and dict(decision.adjustments) == {}


# -- kill switch and reduce-only ----------------------------------------------------------------


def test_kill_switch_rejects_a_risk_increasing_order() -> None:
    # Given a latched kill switch and no position, When a buy is gated, Then it is refused for the kill switch
    decision = check_order(request(), context(kill_switch_latched=True), CONFIG)
    assert not decision.accepted and decision.codes == (ReasonCode.KILL_SWITCH,)


def test_kill_switch_allows_a_reduce_only_order() -> None:
    # Given a latched kill switch and a 1 BTC long, When a 0.3 BTC sell is gated, Then it passes
    ctx = context(kill_switch_latched=True, positions={"BTC/USDT": Decimal(1)})
    decision = check_order(request(side=Side.SELL, quantity=Decimal("0.3"), limit_price=Decimal(59990)), ctx, CONFIG)
    assert decision.accepted and decision.risk_reducing


@pytest.mark.parametrize(
    ("quantity", "open_sell", "reducing"),
    [("1", None, True), ("1.5", None, False), ("0.6", "0.5", False), ("0.5", "0.5", True)],
)
def test_an_order_that_could_flip_the_position_is_not_risk_reducing(
    quantity: str, open_sell: str | None, reducing: bool
) -> None:
    # Given a 1 BTC long and perhaps a working sell, When a sell is classified, Then it reduces only if it cannot flip
    orders = [working(side=Side.SELL, qty=open_sell)] if open_sell else []
    ctx = context(kill_switch_latched=True, positions={"BTC/USDT": Decimal(1)}, open_orders=orders)
    order = request(side=Side.SELL, quantity=Decimal(quantity), limit_price=Decimal(59990))
    assert is_risk_reducing(order, Decimal(1), orders) is reducing
    assert (ReasonCode.KILL_SWITCH in check_order(order, ctx, CONFIG).codes) is not reducing


def test_a_reduce_only_flag_on_an_opening_order_is_refused() -> None:
    # Given no position, When a reduce_only buy is gated, Then it is refused; with a short to cover it passes
    assert check_order(request(reduce_only=True), context(), CONFIG).codes == (ReasonCode.REDUCE_ONLY_INCREASES,)
    covering = check_order(request(reduce_only=True), context(positions={"BTC/USDT": Decimal(-1)}), CONFIG)
    assert covering.accepted


# -- instrument ----------------------------------------------------------------------------------


def test_symbols_off_the_allow_list_or_halted_are_refused() -> None:
    # Given BTC off the allow-list and halted, When gated, Then both reasons are given
    config = replace(CONFIG, allowed_symbols=frozenset({"ETH/USDT"}))
    decision = check_order(request(), context(halted_symbols=frozenset({"BTC/USDT"})), config)
    assert decision.codes == (ReasonCode.NOT_ALLOWED, ReasonCode.HALTED)


def test_an_instrument_the_venue_has_halted_is_refused_as_halted() -> None:
    # Given the venue reporting BTC/USDT not trading (a break or a halt), When a plain order is gated
    decision = check_order(request(), context(instrument=replace(BTCUSDT, active=False)), CONFIG)
    # Then it is refused as halted, naming the venue, and nothing else is wrong with it
    assert decision.codes == (ReasonCode.HALTED,)
    assert "halted at binance" in decision.reasons[0].message


def test_an_unknown_instrument_is_refused() -> None:
    # Given no instrument (or another symbol's), When gated, Then it is refused as unknown
    assert ReasonCode.UNKNOWN_INSTRUMENT in check_order(request(), context(instrument=None), CONFIG).codes
    assert ReasonCode.UNKNOWN_INSTRUMENT in check_order(request(), context(instrument=AAPL), CONFIG).codes


@pytest.mark.parametrize(
    ("quantity", "price", "detail"),
    [("0.000001", "60010", "lot"), ("0.1", "60010.005", "tick"), ("0.00005", "60010", "min_notional")],
)
def test_quantity_and_price_are_validated_against_the_instrument(quantity: str, price: str, detail: str) -> None:
    # Given an order off the lot grid, off the tick grid or below min notional, When gated, Then the filter says which
    decision = check_order(request(quantity=Decimal(quantity), limit_price=Decimal(price)), context(), CONFIG)
    reasons = [r for r in decision.reasons if r.code is ReasonCode.INSTRUMENT_FILTER]
    assert len(reasons) == 1 and reasons[0].message.startswith(detail)


# -- size ----------------------------------------------------------------------------------------


def test_notional_cap_is_two_percent_of_equity() -> None:
    # Given equity 100k (cap 2,000), When a 6,001 USDT order is gated, Then it is refused; at equity 1M it passes
    decision = check_order(request(), context(equity=Decimal(100_000)), CONFIG)
    assert ReasonCode.NOTIONAL_CAP in decision.codes
    assert ReasonCode.NOTIONAL_CAP not in check_order(request(), context(), CONFIG).codes


def test_notional_cap_is_the_per_symbol_cap_when_smaller() -> None:
    # Given a 5,000 USDT cap on BTC and equity 1M, When a 6,001 order is gated, Then the symbol cap refuses it
    config = replace(CONFIG, symbol_notional_caps={"BTC/USDT": Decimal(5000)})
    reason = next(r for r in check_order(request(), context(), config).reasons if r.code is ReasonCode.NOTIONAL_CAP)
    assert "cap 5000" in reason.message


def test_a_parent_worked_in_children_is_capped_on_its_largest_child() -> None:
    # Given equity 100k (cap 2,000) and a 0.1 BTC parent (6,001 USDT) worked as children of at most 0.03 (1,800)
    parent = request(largest_child=Decimal("0.03"))
    # When gated, Then the notional cap passes (each venue order is within it) while the volume share sees 0.1
    decision = check_order(parent, context(equity=Decimal(100_000), average_daily_volume=Decimal(5)), CONFIG)
    assert ReasonCode.NOTIONAL_CAP not in decision.codes and ReasonCode.ADV_SHARE in decision.codes
    # And a largest child of 0.04 (2,400) is refused, naming the child
    decision = check_order(request(largest_child=Decimal("0.04")), context(equity=Decimal(100_000)), CONFIG)
    [reason] = [r for r in decision.reasons if r.code is ReasonCode.NOTIONAL_CAP]
    assert reason.message.startswith("largest child order notional 2400")


def test_a_largest_child_above_the_parent_is_an_invalid_request() -> None:
    with pytest.raises(InvalidOrder, match="exceeds the parent"):
        request(largest_child=Decimal("0.2"))


def test_quantity_above_one_percent_of_adv_is_refused() -> None:
    # Given ADV 5 BTC (1 % = 0.05), When 0.1 BTC is gated, Then it is refused; ADV 10 allows exactly 0.1
    assert ReasonCode.ADV_SHARE in check_order(request(), context(average_daily_volume=Decimal(5)), CONFIG).codes
    assert ReasonCode.ADV_SHARE not in check_order(request(), context(average_daily_volume=Decimal(10)), CONFIG).codes


def test_the_adv_reason_reads_as_a_sentence_not_a_thirty_digit_decimal() -> None:
    adv = Decimal(1) / Decimal(3) * 15  # 4.999... to 28 digits, as a mean of volumes comes out
    (reason,) = [r for r in check_order(request(), context(average_daily_volume=adv), CONFIG).reasons]
    assert reason.message == "quantity 0.1 > 1% of ADV 5 (0.05)"


def test_unknown_adv_is_refused() -> None:
    # Given no ADV, When gated, Then the gate refuses rather than guessing
    assert ReasonCode.ADV_UNKNOWN in check_order(request(), context(average_daily_volume=None), CONFIG).codes


# -- price collar and quotes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "price", "inside"),
    [(Side.BUY, "63000", True), (Side.BUY, "63001", False), (Side.SELL, "56999", False), (Side.SELL, "57001", True)],
)
def test_limit_prices_must_sit_within_five_percent_of_mid_when_liquid(side: Side, price: str, inside: bool) -> None:
    # Given mid 60000.01 and a liquid symbol, When a limit is gated, Then outside ±5 % it is refused
    decision = check_order(request(side=side, limit_price=Decimal(price)), context(), CONFIG)
    assert (ReasonCode.PRICE_COLLAR not in decision.codes) is inside


def test_an_illiquid_symbol_gets_the_ten_percent_collar() -> None:
    # Given ADV worth less than the liquidity threshold, When a limit 8 % above mid is gated, Then it passes
    config = replace(CONFIG, liquid_adv_notional=Decimal(10) ** 10)
    order = request(limit_price=Decimal(64800))
    assert ReasonCode.PRICE_COLLAR not in check_order(order, context(), config).codes
    assert ReasonCode.PRICE_COLLAR in check_order(order, context(), CONFIG).codes


@pytest.mark.parametrize(
    ("instrument", "quote", "adv", "side", "expected"),
    [
        (BTCUSDT, btc_quote(), 20_000, Side.BUY, "63000.01"),  # 60000.01 × 1.05 = 63000.0105 → down
        (BTCUSDT, btc_quote(), 20_000, Side.SELL, "57000.01"),  # 60000.01 × 0.95 = 57000.0095 → up
        (AAPL, aapl_quote(), 50_000_000, Side.BUY, "199.49"),  # 189.995 × 1.05 = 199.49475 → down
        (AAPL, aapl_quote(), 50_000_000, Side.SELL, "180.50"),  # 189.995 × 0.95 = 180.49525 → up
        (AAPL, aapl_quote(), 100_000, Side.BUY, "208.99"),  # illiquid: × 1.10 = 208.9945 → down
    ],
)
def test_a_market_order_becomes_an_ioc_limit_at_the_collar_edge(
    instrument: Instrument, quote: Quote, adv: int, side: Side, expected: str
) -> None:
    # Given a market order on a real-looking instrument, When gated, Then it comes back as an IOC limit at the edge
    order = request(
        venue=instrument.venue, symbol=instrument.symbol, side=side, order_type=OrderType.MARKET, limit_price=None
    )
    qty = Decimal("0.01") if instrument is BTCUSDT else Decimal(1)
    ctx = context(instrument=instrument, quote=quote, average_daily_volume=Decimal(adv), marks={})
    decision = check_order(replace(order, quantity=qty), ctx, CONFIG)
    assert decision.accepted, decision.reasons
    assert decision.order.order_type is OrderType.LIMIT and decision.order.time_in_force is TimeInForce.IOC
    assert decision.order.limit_price == Decimal(expected)
    assert str(decision.order.limit_price) == expected


def test_collar_rounding_in_significant_digits_mode_stays_inside_the_collar() -> None:
    # Given a 5-significant-digit instrument, When the collar edges are computed, Then they round towards the mid
    inst = Instrument("kraken", "XRP/EUR", "XRP", "EUR", PrecisionMode.SIGNIFICANT_DIGITS, Decimal(5), Decimal(8))
    assert collar_price(inst, Side.BUY, Decimal("0.123456"), Decimal("0.05")) == Decimal("0.12962")
    assert collar_price(inst, Side.SELL, Decimal("0.123456"), Decimal("0.05")) == Decimal("0.11729")


def test_the_adjusted_order_applies_to_an_order_intent() -> None:
    # Given a market OrderIntent, When gated, Then its adjustments make a valid collared limit intent
    intent = OrderIntent(
        client_order_id=client_order_id(PLAN, 3),
        plan_id=PLAN,
        slice_no=3,
        venue="binance",
        symbol="BTC/USDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=Decimal("0.01"),
    )
    decision = check_order(OrderRequest.from_intent(intent, strategy="trend"), context(), CONFIG)
    sent = OrderIntent.model_validate(intent.model_dump() | dict(decision.adjustments))
    assert (sent.order_type, sent.limit_price, sent.time_in_force) == (
        OrderType.LIMIT,
        Decimal("63000.01"),
        TimeInForce.IOC,
    )


@pytest.mark.parametrize(
    ("instrument", "age", "stale"),
    [(BTCUSDT, 1.9, False), (BTCUSDT, 2.1, True), (AAPL, 4.9, False), (AAPL, 5.1, True)],
)
def test_quotes_go_stale_after_two_seconds_for_crypto_and_five_for_equities(
    instrument: Instrument, age: float, stale: bool
) -> None:
    # Given a quote of some age, When gated, Then staleness depends on the asset class of the venue
    quote = btc_quote(timedelta(seconds=age)) if instrument is BTCUSDT else aapl_quote(timedelta(seconds=age))
    order = request(venue=instrument.venue, symbol=instrument.symbol, quantity=Decimal(1), limit_price=Decimal(190))
    if instrument is BTCUSDT:
        order = request()
    ctx = context(instrument=instrument, quote=quote, average_daily_volume=Decimal(50_000_000))
    assert (ReasonCode.QUOTE_STALE in check_order(order, ctx, CONFIG).codes) is stale
    assert CONFIG.asset_class(instrument.venue) is (AssetClass.CRYPTO if instrument is BTCUSDT else AssetClass.EQUITY)


def test_a_missing_quote_is_refused_and_a_market_order_stays_unconverted() -> None:
    # Given no quote, When a market order is gated, Then it is refused for the missing quote and not converted
    order = request(order_type=OrderType.MARKET, limit_price=None)
    decision = check_order(order, context(quote=None), CONFIG)
    assert ReasonCode.QUOTE_MISSING in decision.codes and decision.order.order_type is OrderType.MARKET


# -- duplicates, counts, throttle ------------------------------------------------------------------------


def _recent(seconds: float, **changes: Any) -> RecentIntent:
    base = RecentIntent(client_order_id("ldother", 0), "trend", "BTC/USDT", Side.BUY, Decimal("0.1"), NOW)
    return replace(base, at=NOW - timedelta(seconds=seconds), **changes)


@pytest.mark.parametrize(
    ("seen", "duplicate"),
    [
        (_recent(1.0), True),
        (_recent(2.5), False),
        (_recent(1.0, strategy="meanrev"), False),
        (_recent(1.0, quantity=Decimal("0.2")), False),
        (_recent(1.0, client_order_id=client_order_id(PLAN, 0)), False),  # a retry of this very intent
    ],
)
def test_the_same_intent_within_two_seconds_is_a_duplicate(seen: RecentIntent, duplicate: bool) -> None:
    # Given a recent intent, When a matching one is gated, Then only the same strategy/symbol/side/qty within 2 s fails
    decision = check_order(request(), context(recent_intents=[seen]), CONFIG)
    assert (ReasonCode.DUPLICATE in decision.codes) is duplicate


def test_open_order_counts_per_symbol_and_in_total() -> None:
    # Given 4 then 5 working BTC orders (limit 5 per symbol), When gated, Then the fifth is allowed and the sixth not
    four = [working(n=i) for i in range(4)]
    assert ReasonCode.OPEN_ORDERS_SYMBOL not in check_order(request(), context(open_orders=four), CONFIG).codes
    five = [*four, working(n=9)]
    assert ReasonCode.OPEN_ORDERS_SYMBOL in check_order(request(), context(open_orders=five), CONFIG).codes
    # Given a total limit of 3 and 3 working ETH orders, Then the total limit refuses a BTC order
    eth = [working("ETH/USDT", n=i) for i in range(3)]
    decision = check_order(request(), context(open_orders=eth), replace(CONFIG, max_open_orders_total=3))
    assert decision.codes == (ReasonCode.OPEN_ORDERS_TOTAL,)


@pytest.mark.parametrize(
    ("second", "minute", "codes"),
    [(9, 299, ()), (10, 0, (ReasonCode.THROTTLE_SECOND,)), (0, 300, (ReasonCode.THROTTLE_MINUTE,))],
)
def test_message_throttle_per_second_and_minute(second: int, minute: int, codes: tuple[ReasonCode, ...]) -> None:
    # Given recent message counts, When gated, Then the order's own message must fit under 10/s and 300/min
    decision = check_order(request(), context(messages_last_second=second, messages_last_minute=minute), CONFIG)
    assert decision.codes == codes


# -- exposure ---------------------------------------------------------------------------------


def test_gross_exposure_limit_refuses_only_orders_that_raise_it() -> None:
    # Given an ETH book worth 1.505x equity (limit 1.5x), When a BTC buy is gated, Then gross exposure refuses it
    config = replace(CONFIG, max_symbol_concentration=Decimal(5), max_cluster_concentration=Decimal(5))
    ctx = context(positions={"ETH/USDT": Decimal(430)})
    assert check_order(request(), ctx, config).codes == (ReasonCode.GROSS_EXPOSURE,)
    # And a sell that shrinks a BTC long in the same book passes
    long_btc = context(positions={"ETH/USDT": Decimal(430), "BTC/USDT": Decimal(1)})
    assert check_order(request(side=Side.SELL, limit_price=Decimal(59990)), long_btc, config).accepted
    # And below the limit the buy passes
    assert check_order(request(), context(positions={"ETH/USDT": Decimal(400)}), config).accepted


def test_symbol_concentration_counts_working_orders() -> None:
    # Given 4 BTC long (24 % of equity) and a working 0.1 buy, When a 0.1 buy is gated, Then 25.2 % > 25 % refuses it
    ctx = context(positions={"BTC/USDT": Decimal(4)}, open_orders=[working(qty="0.1")])
    assert ReasonCode.SYMBOL_CONCENTRATION in check_order(request(), ctx, CONFIG).codes
    assert ReasonCode.SYMBOL_CONCENTRATION not in check_order(request(), replace(ctx, open_orders=()), CONFIG).codes


def test_cluster_concentration_uses_the_correlation_snapshot() -> None:
    # Given 300 ETH (105 % of equity), BTC/ETH correlated at 0.85, When a BTC buy is gated, Then the cluster refuses it
    snapshot = CorrelationSnapshot(
        ts=NOW,
        timeframe="1d",
        method="pearson",
        window=90,
        symbols=("BTC/USDT", "ETH/USDT"),
        matrix=((1, 0.85), (0.85, 1)),
    )
    ctx = context(positions={"ETH/USDT": Decimal(300)}, correlation=snapshot)
    assert check_order(request(), ctx, CONFIG).codes == (ReasonCode.CLUSTER_CONCENTRATION,)
    # And without the correlation BTC is its own cluster and passes
    assert check_order(request(), replace(ctx, correlation=None), CONFIG).accepted


def test_single_linkage_clusters_chain_through_intermediate_symbols() -> None:
    # Given A~B 0.8 and B~C 0.75 but A~C 0.3, When clustered at 0.7, Then A, B, C form one cluster and D its own
    snapshot = CorrelationSnapshot(
        ts=NOW,
        timeframe="1d",
        method="pearson",
        window=90,
        symbols=("A", "B", "C", "D"),
        matrix=((1, 0.8, 0.3, 0.1), (0.8, 1, 0.75, 0.2), (0.3, 0.75, 1, 0.69), (0.1, 0.2, 0.69, 1)),
    )
    clusters = correlation_clusters(snapshot, 0.7)
    assert clusters["A"] == clusters["C"] == frozenset({"A", "B", "C"}) and clusters["D"] == frozenset({"D"})


def test_a_held_symbol_without_a_mark_fails_the_exposure_check() -> None:
    # Given a SOL position with no mark, When gated, Then exposure cannot be measured and the order is refused
    decision = check_order(request(), context(positions={"SOL/USDT": Decimal(10)}), CONFIG)
    assert decision.codes == (ReasonCode.MARK_MISSING,)


# -- the decision -------------------------------------------------------------------------------------


def test_every_failing_check_is_reported() -> None:
    # Given an order that breaks many controls at once
    config = replace(CONFIG, allowed_symbols=frozenset())
    ctx = context(
        kill_switch_latched=True,
        quote=btc_quote(timedelta(seconds=10)),
        equity=Decimal(10_000),
        average_daily_volume=Decimal(1),
        recent_intents=[_recent(0.5)],
        messages_last_second=50,
        messages_last_minute=500,
        halted_symbols=frozenset({"BTC/USDT"}),
    )
    # When gated
    decision = check_order(request(limit_price=Decimal(70000)), ctx, config)
    # Then every failure is listed, each with a message
    expected = {
        ReasonCode.KILL_SWITCH,
        ReasonCode.NOT_ALLOWED,
        ReasonCode.HALTED,
        ReasonCode.QUOTE_STALE,
        ReasonCode.PRICE_COLLAR,
        ReasonCode.NOTIONAL_CAP,
        ReasonCode.ADV_SHARE,
        ReasonCode.SYMBOL_CONCENTRATION,  # 7,000 of 10,000 equity
        ReasonCode.CLUSTER_CONCENTRATION,
        ReasonCode.DUPLICATE,
        ReasonCode.THROTTLE_SECOND,
        ReasonCode.THROTTLE_MINUTE,
    }
    assert set(decision.codes) == expected and all(r.message for r in decision.reasons)
    assert not decision.accepted


def test_a_rejection_serialises_as_a_step_functions_cause_and_raises() -> None:
    # Given a rejected order, When turned into a cause and raised, Then both carry every reason code
    decision = check_order(request(), context(kill_switch_latched=True, messages_last_second=99), CONFIG)
    cause = json.loads(decision.error_cause())
    assert [r["code"] for r in cause["reasons"]] == ["kill_switch_latched", "message_rate_per_second_above_limit"]
    with pytest.raises(PreTradeRejected) as raised:
        decision.raise_if_rejected()
    assert raised.value.reasons == decision.reasons
    assert check_order(request(), context(), CONFIG).raise_if_rejected() == request()


def test_config_rejects_nonsense_limits() -> None:
    # Given a collar of 100 % or a zero cap, When configured, Then the config refuses them
    with pytest.raises(ValueError, match="collars"):
        GateConfig(allowed_symbols=frozenset(), collar_illiquid=Decimal(1))
    with pytest.raises(ValueError, match="positive"):
        GateConfig(allowed_symbols=frozenset(), max_order_equity_fraction=Decimal(0))


def test_a_quote_stamped_ahead_of_the_clock_beyond_the_skew_is_not_trusted() -> None:
    # Given quotes 0.5 s and 30 s in the future (clock skew, or another replay's quote in the cache)
    slight, far = btc_quote(age=timedelta(seconds=-0.5)), btc_quote(age=timedelta(seconds=-30))
    # Then the first passes (within the 1 s skew) and the second is refused as stale, with the reason
    assert ReasonCode.QUOTE_STALE not in check_order(request(), context(quote=slight), CONFIG).codes
    decision = check_order(request(), context(quote=far), CONFIG)
    assert decision.codes == (ReasonCode.QUOTE_STALE,)
    assert "30.000s ahead" in decision.reasons[0].message
