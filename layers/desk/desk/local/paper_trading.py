"""The demo's paper trading: the last day's plans worked on a paper Binance by the order-placement
state machine, then reconciled, all in the local cloud.

The venue is :class:`~desk.local.fakes.FakeBinance` on 127.0.0.1 behind the real ccxt client, with
Binance's filters for each symbol (:data:`PAPER_FILTERS`) and a static book around the plan's
arrival price (``PAPER_SPREAD_BPS`` wide). The replay venue that the cost optimiser sizes plans on
lists the same filters (:func:`paper_instruments`), so plans are on the venue's lot and tick grid.

Time is virtual. The state machine's Wait states (the slice schedule, the poll interval) and Retry
backoffs would really sleep in moto; :class:`VirtualTime` makes them wait on the demo's clock instead.
While any execution runs a task the clock stands still; once every running execution is waiting, the
clock jumps to the earliest wake-up. A two-hour TWAP is worked slice by slice, at the slice times,
in well under a second, and plans started together interleave as they would in AWS.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import pandas as pd
import psycopg

from desk import wiring
from desk.aws import clients, secrets
from desk.aws.executions import start_execution
from desk.clock import FixedClock
from desk.domain.instruments import Instrument, PrecisionMode
from desk.local.cloud import LocalCloud
from desk.local.fakes import FakeBinance, FakeMarket
from desk.schemas.trading import ExecutionPlan
from desk.settings import get_settings

__all__ = [
    "PAPER_FILTERS",
    "PAPER_SPREAD_BPS",
    "PaperRun",
    "VirtualTime",
    "paper_instruments",
    "paper_markets",
    "trade_plans",
]

#: Binance spot filters per base asset: tick size, lot step, minimum quantity (as its exchangeInfo lists them).
PAPER_FILTERS: dict[str, tuple[str, str, str]] = {
    "BTC": ("0.01", "0.00001", "0.00001"),
    "ETH": ("0.01", "0.0001", "0.0001"),
    "LTC": ("0.01", "0.001", "0.001"),
}
PAPER_MIN_NOTIONAL = Decimal(10)
PAPER_SPREAD_BPS = Decimal(2)
PAPER_CASH = Decimal(5_000_000)
_TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
# The order-placement machine as deployed to dev: slices wait for their time, polls every 5 s.
PAPER_SUBSTITUTIONS = {"PollIntervalSeconds": "5", "MaxPollsPerSlice": "120", "SliceWaitMaxSeconds": "3600"}


def _filters(symbol: str) -> tuple[Decimal, Decimal, Decimal]:
    base = symbol.partition("/")[0]
    if base not in PAPER_FILTERS:
        raise KeyError(f"no paper filters for {symbol}; known: {', '.join(PAPER_FILTERS)}")
    tick, step, min_qty = (Decimal(v) for v in PAPER_FILTERS[base])
    return tick, step, min_qty


def paper_instruments(venue: str, symbols: Sequence[str]) -> dict[str, Instrument]:
    """The paper venue's instruments (tick-size precision, Binance's filters) by unified symbol."""
    out = {}
    for symbol in symbols:
        tick, step, min_qty = _filters(symbol)
        base, _, quote = symbol.partition("/")
        out[symbol] = Instrument(
            venue=venue, symbol=symbol, base=base, quote=quote, precision_mode=PrecisionMode.TICK_SIZE,
            price_precision=tick, amount_precision=step, min_amount=min_qty, min_notional=PAPER_MIN_NOTIONAL,
        )  # fmt: skip
    return out


def paper_markets(mids: Mapping[str, Decimal]) -> list[FakeMarket]:
    """One fake market per symbol, its book ``PAPER_SPREAD_BPS`` wide around ``mids[symbol]`` on the tick grid."""
    markets = []
    for symbol, mid in mids.items():
        tick, step, min_qty = _filters(symbol)
        half = mid * PAPER_SPREAD_BPS / Decimal(20_000)
        bid = ((mid - half) / tick).to_integral_value(rounding=ROUND_FLOOR) * tick
        ask = ((mid + half) / tick).to_integral_value(rounding=ROUND_CEILING) * tick
        base, _, quote = symbol.partition("/")
        markets.append(
            FakeMarket(f"{base}{quote}", base, quote, tick, step, min_qty, Decimal(9_000), PAPER_MIN_NOTIONAL,
                       bid, ask, depth_qty=Decimal(1_000))
        )  # fmt: skip
    return markets


class VirtualTime:
    """Waits of the state machines' threads on a :class:`FixedClock`, advanced when all of them wait."""

    def __init__(self, clock: FixedClock) -> None:
        self.clock = clock
        self._cond = threading.Condition()
        self._wakes: dict[int, datetime] = {}
        self.waited = timedelta(0)

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        me = threading.get_ident()
        with self._cond:
            wake = self.clock.now() + timedelta(seconds=seconds)
            self._wakes[me] = wake
            self._cond.notify_all()
            while self.clock.now() < wake:
                self._cond.wait(0.05)
            del self._wakes[me]

    def advance_if_all_wait(self, running: int) -> bool:
        """Jump to the earliest wake-up when ``running`` executions are all waiting; True if it moved."""
        with self._cond:
            if running == 0 or len(self._wakes) < running:
                return False
            target = min(self._wakes.values())
            if target > self.clock.now():
                self.waited += target - self.clock.now()
                self.clock.set(target)
            self._cond.notify_all()
            return True

    def settle(self, timeout: float = 0.01) -> None:
        with self._cond:
            self._cond.wait(timeout)

    @contextlib.contextmanager
    def installed(self) -> Iterator[VirtualTime]:
        """Route moto's Wait states and Retry backoffs through :meth:`sleep` while the block runs."""
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

        waits: Any = wait_function.WaitFunction
        retries: Any = retrier_decl
        original_wait, original_time = waits._wait_interval, retries.time
        sleeper = self

        def wait_interval(_self: Any, env: Any, wait_seconds: int) -> None:
            sleeper.sleep(float(wait_seconds))

        waits._wait_interval = wait_interval
        retries.time = type("VirtualClockTime", (), {"sleep": staticmethod(self.sleep)})
        try:
            yield self
        finally:
            waits._wait_interval = original_wait
            retries.time = original_time


@dataclass
class PaperRun:
    """What the paper venue did with the plans, read back from the ledger and the state machines."""

    plans: pd.DataFrame  # one row per plan: execution status, filled quantity, prices and costs
    orders: pd.DataFrame  # one row per child order
    fills: pd.DataFrame  # every fill, with the time it happened
    reconciliations: pd.DataFrame  # every reconciliation run after the trading
    venue_orders: int  # orders the paper venue received
    virtual_minutes: float


def _run_all(
    cloud: LocalCloud, time: VirtualTime, starts: Sequence[tuple[str, str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Start every execution at once, drive virtual time until all are final, return ``describe_execution``s."""
    sfn = clients.client("stepfunctions")
    arns = [start_execution(machine, name, payload) for machine, name, payload in starts]
    while True:
        described = [sfn.describe_execution(executionArn=arn) for arn in arns]
        running = sum(1 for d in described if d["status"] not in _TERMINAL)
        if running == 0:
            cloud.wait_for_executions(timeout=30)
            return [dict(d) for d in described]
        if not time.advance_if_all_wait(running):
            time.settle()


def _venue_env(fake: FakeBinance, venue: str) -> dict[str, str]:
    spec: dict[str, Any] = {"kind": "ccxt", "exchange_id": "binance", "credentials_id": f"venues/{venue}"}
    # The paper venue has no request budget, and Binance's would refill in real time while the demo's
    # clock is virtual: hours of slices pass in a second, so its 1,200 burst would run dry and stay dry.
    spec |= {"base_url": fake.base_url, "rate_limit": [1e6, 1e6]}
    return {"DESK_VENUES": json.dumps({venue: spec})}


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    import os

    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    get_settings.cache_clear()
    wiring.venue.cache_clear()
    wiring.quote_cache.cache_clear()
    secrets.reset()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        wiring.venue.cache_clear()
        wiring.quote_cache.cache_clear()
        secrets.reset()


def trade_plans(
    cloud: LocalCloud,
    plans: Sequence[ExecutionPlan],
    clock: FixedClock,
    database_url: str,
    mids: Mapping[str, Decimal],
    *,
    reconciliations: int = 2,
) -> PaperRun:
    """Work ``plans`` on a paper Binance through the order-placement state machine, then reconcile.

    ``mids`` lists every symbol the paper venue trades (the universe: reconciliation asks about all
    of them) with the mid its static book is centred on. The desk's settings (database, Redis) are
    the caller's; ``database_url`` is read back for the report.
    """
    import importlib

    for function in ("order_tasks", "reconcile_tasks"):
        module = importlib.import_module(cloud.topology.functions[function].module)
        cloud.register(function, module.lambda_handler)
    venue = plans[0].venue if plans else "binance"
    start = clock.now()
    with FakeBinance(
        markets=paper_markets(mids),
        balances={"USDT": PAPER_CASH, **{s.partition("/")[0]: Decimal(0) for s in mids}},
        clock_ms=lambda: int(clock.now().timestamp() * 1000),
    ) as fake, _environment(_venue_env(fake, venue)), VirtualTime(clock).installed() as time:  # fmt: skip
        clients.client("secretsmanager").put_secret_value(
            SecretId=f"venues/{venue}", SecretString=json.dumps({"api_key": fake.api_key, "secret": "paper"})
        )
        definition = (cloud.root / "statemachines" / "order_placement.asl.json").read_text()
        machine = cloud.create_state_machine("order-placement-paper", definition, substitutions=PAPER_SUBSTITUTIONS)
        executions = _run_all(cloud, time, [(machine, p.plan_id, p.model_dump(mode="json")) for p in plans])
        recon_machine = cloud.state_machine_arns["reconciliation"]
        for n in range(reconciliations):
            clock.advance(timedelta(minutes=1))
            name = f"recon-{venue}-paper-{n + 1}"
            _run_all(cloud, time, [(recon_machine, name, {"venue": venue, "trigger": "manual"})])
        with fake.ledger.lock:
            venue_orders = len(fake.ledger.orders)
    return PaperRun(
        plans=_plan_rows(plans, executions, database_url),
        orders=_read(database_url, _ORDERS, [[p.plan_id for p in plans]]),
        fills=_read(database_url, _FILLS, [[p.plan_id for p in plans]]),
        reconciliations=_read(database_url, _RECONCILIATIONS, [start]),
        venue_orders=venue_orders,
        virtual_minutes=(clock.now() - start).total_seconds() / 60,
    )


_ORDERS = """
SELECT plan_id, client_order_id, order_type, time_in_force, quantity, limit_price, state, filled_quantity,
       average_price, created_at, updated_at, reject_reason
  FROM orders WHERE plan_id = ANY(%s) ORDER BY plan_id, created_at, client_order_id
"""
_FILLS = """
SELECT o.plan_id, f.client_order_id, f.quantity, f.price, f.fee, f.fee_currency, f.occurred_at
  FROM fills f JOIN orders o USING (client_order_id)
 WHERE o.plan_id = ANY(%s) ORDER BY f.occurred_at, f.client_order_id
"""
_RECONCILIATIONS = """
SELECT run_id, venue, started_at, finished_at, status, drift_count, details
  FROM reconciliation_runs WHERE started_at >= %s ORDER BY started_at
"""


def _read(url: str, query: str, params: Sequence[Any]) -> pd.DataFrame:
    with psycopg.connect(url) as conn:
        cur = conn.execute(query, params)
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description or ()])


def _why(execution: Mapping[str, Any], orders: pd.DataFrame) -> str:
    """Why an execution failed: the gate's reasons on the refused order, else the execution's cause."""
    if execution["status"] == "SUCCEEDED":
        return ""
    for reason in orders["reject_reason"].dropna():
        if reason.startswith("{"):
            return "; ".join(r["message"] for r in json.loads(reason).get("reasons", []))
    return str(execution.get("cause", ""))[:300]


def _plan_rows(plans: Sequence[ExecutionPlan], executions: Sequence[Mapping[str, Any]], url: str) -> pd.DataFrame:
    fills = _read(url, _FILLS, [[p.plan_id for p in plans]])
    orders = _read(url, _ORDERS, [[p.plan_id for p in plans]])
    rows = []
    for plan, execution in zip(plans, executions, strict=True):
        own = fills[fills["plan_id"] == plan.plan_id]
        filled = Decimal(sum(own["quantity"], Decimal(0)))
        notional = Decimal(sum((q * p for q, p in zip(own["quantity"], own["price"], strict=True)), Decimal(0)))
        quote = plan.symbol.partition("/")[2]
        fees = Decimal(
            sum(
                (
                    f if c == quote else f * p
                    for f, c, p in zip(own["fee"], own["fee_currency"], own["price"], strict=True)
                ),
                Decimal(0),
            )
        )
        average = notional / filled if filled else None
        sign = 1 if plan.side.value == "buy" else -1
        shortfall = None
        if average is not None and plan.arrival_price is not None:
            # Implementation shortfall against the arrival price, fees included (valued in the quote currency).
            shortfall = (
                float((sign * (average - plan.arrival_price) * filled + fees) / (plan.arrival_price * filled)) * 1e4
            )
        rows.append(
            {
                "plan": plan.plan_id,
                "symbol": plan.symbol,
                "side": plan.side.value,
                "quantity": plan.quantity,
                "slices": len(plan.slices),
                "schedule": plan.schedule,
                "status": execution["status"] + (f" ({execution['error']})" if execution.get("error") else ""),
                "cause": _why(execution, orders[orders["plan_id"] == plan.plan_id]),
                "filled": filled,
                "arrival": plan.arrival_price,
                "average price": average,
                "shortfall bps": shortfall,
                "estimated bps": plan.expected_cost_bps,
            }
        )
    return pd.DataFrame(rows)
