"""Cost optimiser on real Bitstamp BTC bars with the in-memory ports and a recording execution starter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from desk.clock import FixedClock
from desk.domain.instruments import Instrument, PrecisionMode, decimal_sum
from desk.domain.orders import Fill, Side, plan_id_from
from desk.events import Envelope, new_event
from desk.local import catalogue
from desk.local.memory import FrameMarketData, MemoryEventBus, MemoryQuoteCache, MemoryStore
from desk.schemas.analytics import Signal
from desk.schemas.market import BookLevel, OrderBook, Quote
from desk.usecases.cost_optimiser import PlanOutcome, optimise
from desk.usecases.strategies import ExecutionSpec, StrategySpec
from quant.portfolio import kelly

SYMBOL = "BTC/USDT"


class RecordingStarter:
    """Behaves like Step Functions' StartExecution on a name: the same name and input start nothing new."""

    def __init__(self) -> None:
        self.executions: dict[str, dict[str, Any]] = {}
        self.calls = 0

    def start(self, name: str, input: Mapping[str, Any]) -> str:
        self.calls += 1
        if self.executions.setdefault(name, dict(input)) != dict(input):
            raise RuntimeError(f"ExecutionAlreadyExists: {name}")
        return f"arn:aws:states:us-east-1:123456789012:execution:order-placement:{name}"


class Markets:
    """Per-venue market data whose BTC/USDT trades in lots of 0.001 with a 10 USDT minimum notional."""

    def __init__(self, feed: FrameMarketData) -> None:
        self.feed = feed
        self.halted: set[str] = set()
        self.venue = "binance"

    def __call__(self, venue: str) -> Any:
        self.venue = venue
        return self

    def markets(self) -> Mapping[str, Instrument]:
        return {SYMBOL: replace(INSTRUMENT, active=self.venue not in self.halted)}


INSTRUMENT = Instrument(
    venue="binance",
    symbol=SYMBOL,
    base="BTC",
    quote="USDT",
    precision_mode=PrecisionMode.DECIMAL_PLACES,
    price_precision=Decimal(2),
    amount_precision=Decimal(3),
    min_notional=Decimal(10),
)


class World:
    def __init__(self) -> None:
        frame = catalogue.bitstamp_daily()["BTC"].iloc[-300:]
        self.feed = FrameMarketData("binance", {(SYMBOL, "1d"): frame})
        self.store, self.quotes, self.bus = MemoryStore(), MemoryQuoteCache(), MemoryEventBus()
        self.store.upsert_bars(self.feed.series(SYMBOL, "1d"))
        last = self.feed.series(SYMBOL, "1d")[-1]
        self.ts = last.ts
        self.clock = FixedClock(self.ts + timedelta(days=1, minutes=1))
        self.close = last.close
        self.quotes.put_quote(
            Quote(
                venue="binance",
                symbol=SYMBOL,
                ts=self.clock.now(),
                bid=self.close - Decimal("0.5"),
                ask=self.close + Decimal("0.5"),
                bid_size=Decimal(3),
                ask_size=Decimal(3),
            )
        )
        self.starter = RecordingStarter()
        self.markets = Markets(self.feed)

    def signal_event(self, weight: float, strategy: str = "momentum_crypto") -> Envelope:
        signal = Signal(
            signal_id=f"sg-test-{weight}",
            strategy=strategy,
            venue="binance",
            symbol=SYMBOL,
            timeframe="1d",
            ts=self.ts,
            target_weight=weight,
            strength=max(-1.0, min(1.0, weight)),
        )
        return new_event("signal.generated", signal, clock=self.clock)

    def run(self, event: Envelope, spec: StrategySpec) -> PlanOutcome:
        return optimise(
            event,
            store=self.store,
            quotes=self.quotes,
            market_data=self.markets,
            starter=self.starter,
            bus=self.bus,
            clock=self.clock,
            strategies=[spec],
        )

    def mid(self) -> Decimal:
        quote = self.quotes.get_quote("binance", SYMBOL)
        assert quote is not None
        return quote.mid


SPEC = StrategySpec(
    key="momentum_crypto",
    kind="momentum",
    venue="binance",
    symbols=(SYMBOL,),
    timeframe="1d",
    history=timedelta(days=300),
    capital=Decimal(100_000),
    kelly_fraction=None,
    execution=ExecutionSpec(horizon=timedelta(hours=2), max_slices=12, schedule="twap"),
)


def _asks(world: World, **asks: Decimal) -> None:
    """One ask level of 100 per venue in the cache, at the given price."""
    for venue, ask in asks.items():
        level = BookLevel(price=ask, quantity=Decimal(100))
        world.quotes.put_book(OrderBook(venue=venue, symbol=SYMBOL, ts=world.clock.now(), bids=(), asks=(level,)))


def _held(world: World, quantity: str) -> None:
    world.store.record_fill(
        Fill(
            venue="binance",
            venue_trade_id="t-1",
            client_order_id="ldprevious-0",
            symbol=SYMBOL,
            side=Side.BUY,
            quantity=Decimal(quantity),
            price=world.close,
            occurred_at=world.ts,
        )
    )


@pytest.mark.parametrize("schedule", ["twap", "almgren_chriss", "vwap", "auto"])
def test_slices_sum_exactly_to_the_rounded_position_change(schedule: str) -> None:
    # Given 1.2345 BTC held and a target of half the capital
    world = World()
    _held(world, "1.2345")
    spec = replace(SPEC, execution=replace(SPEC.execution, schedule=schedule, risk_aversion=1e-4))

    # When the signal is optimised
    outcome = world.run(world.signal_event(0.5), spec)

    # Then the plan trades the change truncated to the lot, in whole-lot slices summing to it exactly
    plan = outcome.plan
    assert plan is not None and outcome.created
    change = Decimal(repr(0.5 * 100_000 / float(world.mid()))) - Decimal("1.2345")
    assert plan.quantity == INSTRUMENT.amount_to_precision(abs(change))
    assert plan.side is (Side.BUY if change > 0 else Side.SELL)
    assert decimal_sum(s.quantity for s in plan.slices) == plan.quantity
    for s in plan.slices:
        INSTRUMENT.check_order(s.quantity, plan.arrival_price)
    assert plan.schedule in {"twap", "almgren_chriss", "vwap"}
    assert plan.expected_cost_bps is not None and plan.expected_cost_bps > 0
    assert plan.plan_id == plan_id_from(f"sg-test-{0.5}", "momentum_crypto")


def test_almgren_chriss_front_loads_a_risk_averse_schedule() -> None:
    # Given a strongly risk-averse Almgren–Chriss execution
    world = World()
    spec = replace(SPEC, execution=replace(SPEC.execution, schedule="almgren_chriss", risk_aversion=1e-2))

    # When a large buy is planned
    plan = world.run(world.signal_event(2.0), replace(spec, max_weight=2.0)).plan

    # Then earlier slices are at least as large as later ones, and the first is larger than the last
    assert plan is not None and plan.schedule == "almgren_chriss"
    sizes = [s.quantity for s in plan.slices]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]


def test_a_redelivered_signal_reuses_the_plan_and_starts_one_execution() -> None:
    # Given a signal that was planned once
    world = World()
    event = world.signal_event(0.3)
    first = world.run(event, SPEC)

    # When it is delivered again after the clock moved on
    world.clock.advance(timedelta(minutes=5))
    second = world.run(event, SPEC)

    # Then the same stored plan is used and only one execution exists, named by the plan id
    assert first.plan is not None and second.plan == first.plan
    assert (first.created, second.created) == (True, False)
    assert list(world.store.plans) == [first.plan.plan_id]
    assert list(world.starter.executions) == [first.plan.plan_id]
    assert first.execution_arn == second.execution_arn
    assert len({e.id for e in world.bus.of_type("plan.created")}) == 1


def test_the_kelly_cap_limits_the_target_weight() -> None:
    # Given half-Kelly sizing and a signal asking for 3x leverage
    world = World()
    spec = replace(SPEC, kelly_fraction=0.5, max_weight=5.0)

    # When it is optimised
    plan = world.run(world.signal_event(3.0), spec).plan

    # Then the traded quantity is the Kelly weight's, from the same bars' returns
    closes = pd.Series(
        [
            float(b.close)
            for b in world.store.load_bars("binance", SYMBOL, "1d", world.ts - spec.history, world.clock.now())
        ]
    )
    r = closes.pct_change().dropna()
    cap = abs(float(kelly(np.array([r.mean()]), np.array([[r.var(ddof=1)]]), fraction=0.5)[0]))
    assert cap < 3.0
    expected = INSTRUMENT.amount_to_precision(Decimal(repr(cap * 100_000 / float(world.mid()))))
    assert plan is not None and plan.quantity == expected


def test_routing_sends_the_plan_to_the_cheaper_book() -> None:
    # Given two candidate venues where coinbase offers BTC below binance
    world = World()
    spec = replace(SPEC, execution=replace(SPEC.execution, venues=("coinbase",)))
    _asks(world, binance=world.close + 50, coinbase=world.close - 50)

    # When a buy is planned
    plan = world.run(world.signal_event(0.2), spec).plan

    # Then it goes to coinbase
    assert plan is not None and plan.venue == "coinbase" and plan.side is Side.BUY


def test_nothing_is_planned_or_started_without_a_change_or_under_the_kill_switch() -> None:
    # Given a flat book and a flat target, then a latched kill switch
    world = World()
    flat = world.run(world.signal_event(0.0), SPEC)
    world.store.latch_kill_switch("risk: var", at=world.clock.now(), by="risk")
    latched = world.run(world.signal_event(0.4), SPEC)

    # Then neither plans nor starts anything, and each says why
    assert (flat.plan, flat.reason) == (None, "no change")
    assert (latched.plan, latched.reason) == (None, "kill switch latched")
    assert world.store.plans == {} and world.starter.calls == 0 and world.bus.published == []


def test_a_change_below_the_minimum_notional_is_not_planned() -> None:
    # Given a position a few dollars away from the target
    world = World()
    target = Decimal(repr(0.1 * 100_000 / float(world.mid())))
    _held(world, str(INSTRUMENT.amount_to_precision(target) - Decimal("0.0005")))

    # When the signal is optimised, Then the residual is refused by the venue filters, not sent
    outcome = world.run(world.signal_event(0.1), SPEC)
    assert outcome.plan is None and outcome.reason is not None and "not tradable" in outcome.reason


def test_a_venue_that_has_halted_the_symbol_is_no_route_and_all_halted_plans_nothing() -> None:
    # Given two candidate venues, coinbase cheaper but halted
    world = World()
    spec = replace(SPEC, execution=replace(SPEC.execution, venues=("coinbase",)))
    _asks(world, binance=world.close + 50, coinbase=world.close - 50)
    world.markets.halted = {"coinbase"}
    # When a buy is planned, Then it goes to binance, the venue still trading
    plan = world.run(world.signal_event(0.2), spec).plan
    assert plan is not None and plan.venue == "binance"
    # And with every venue halted nothing is planned or started, and the reason says so
    again = World()
    again.markets.halted = {"binance"}
    outcome = again.run(again.signal_event(0.2), SPEC)
    assert outcome.plan is None and outcome.reason is not None and "halted on every venue" in outcome.reason
    assert again.starter.calls == 0


def test_a_long_only_strategy_goes_flat_on_a_short_view_and_never_sells_below_zero() -> None:
    # Given 0.5 BTC held by a long-only instance (the default), and a signal of -40%
    world = World()
    _held(world, "0.5")
    outcome = world.run(world.signal_event(-0.4), SPEC)
    # Then the plan sells exactly what is held: flat, not short
    assert outcome.plan is not None and (outcome.plan.side, outcome.plan.quantity) == (Side.SELL, Decimal("0.5"))
    # And from flat, the same short view plans nothing
    flat = World()
    assert flat.run(flat.signal_event(-0.4), SPEC).reason == "no change"
    # While an instance allowed to short sells the full target
    short = World()
    outcome = short.run(short.signal_event(-0.4), replace(SPEC, allow_short=True, kelly_fraction=None))
    expected = INSTRUMENT.amount_to_precision(Decimal(repr(0.4 * 100_000 / float(short.mid()))))
    assert outcome.plan is not None and (outcome.plan.side, outcome.plan.quantity) == (Side.SELL, expected)
