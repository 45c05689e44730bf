"""The desk's pipeline on the local cloud over a replayed period: what ``make demo`` runs before its report.

One simulated day at a time: the ingest schedule fires ``ingest_planner``, the dispatcher drains
every queue (ingest-jobs → ``ingest_worker`` → ``bars.ingested`` → regime and correlation →
``signals`` → ``cost_optimiser``), then the risk schedule fires ``risk`` and the queues are drained
again. The handlers are the deployed ones, invoked through moto and the Lambda shim; only two
ports are pinned (:func:`desk.wiring.install`): the market data is a replay venue over catalogue
bars that serves a bar once the simulated clock has passed its close, and the clock is the
scheduler's. Plans start a recording starter instead of the order-placement state machine, whose
order tasks would call a real exchange; after the last day, that day's plans are worked on a paper
Binance by the order-placement state machine and reconciled (:mod:`desk.local.paper_trading`).

Schedules run at the demo's own cadence, not the manifest's: ``rate(1 minute)`` over a year of
simulated days would fire half a million planner invocations for one new daily bar each day. The
demo keeps the manifest's targets and gives them daily cron expressions (ingest at the daily close,
risk five minutes later, once the day's events have been consumed). The hourly correlation refresh
and the per-minute reconciliation are left out: correlation already runs on every ``bars.ingested``
of the daily timeframe, and no order reaches a venue to reconcile against.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import psycopg
from psycopg import sql

from desk import wiring
from desk.aws import clients
from desk.clock import FixedClock
from desk.events import Envelope
from desk.local import catalogue
from desk.local.cloud import ACCOUNT_ID, REGION, LocalCloud
from desk.local.dispatcher import DispatchStats
from desk.local.memory import FrameMarketData
from desk.local.paper_trading import PaperRun, paper_instruments, trade_plans
from desk.local.scheduler import Firing, Scheduler
from desk.schemas.trading import ExecutionPlan
from desk.settings import get_settings
from desk.store.migrate import migrate

__all__ = [
    "DEMO_SCHEDULES",
    "PipelineConfig",
    "PipelineError",
    "PipelineRun",
    "RecordingStarter",
    "prepare_schema",
    "redis_db_url",
    "run_pipeline",
    "schema_url",
]

#: The demo's cadence for the manifest's schedules (target functions unchanged), see the module docstring.
DEMO_SCHEDULES: dict[str, str] = {
    "ingest": "cron(0 0 * * ? *)",
    "risk-refresh": "cron(5 0 * * ? *)",
}
_RISK_OFFSET = timedelta(minutes=5)
PIPELINE_FUNCTIONS = ("ingest_planner", "ingest_worker", "regime", "correlation", "signals", "cost_optimiser", "risk")
_ASSETS = ("BTC", "ETH", "LTC")


class PipelineError(RuntimeError):
    """The pipeline could not run: data, a server or a port is missing (the message says which)."""


@dataclass(frozen=True)
class PipelineConfig:
    """What to replay: ``days`` daily bars per asset from ``start``, after a backfill from ``backfill_start``."""

    start: datetime = datetime(2019, 1, 1, tzinfo=UTC)
    days: int = 150
    backfill_start: datetime = datetime(2018, 1, 1, tzinfo=UTC)
    assets: tuple[str, ...] = _ASSETS
    venue: str = "binance"
    quote: str = "USDT"
    timeframe: str = "1d"
    schema: str = "demo"
    paper_trade: bool = True  # work the last day's plans on a paper venue (desk.local.paper_trading)

    def symbol(self, asset: str) -> str:
        return f"{asset}/{self.quote}"

    def universe_json(self) -> str:
        entries = [
            {
                "venue": self.venue,
                "symbol": self.symbol(a),
                "timeframe": self.timeframe,
                "asset_class": "crypto",
                "start": self.backfill_start.isoformat(),
            }
            for a in self.assets
        ]
        return json.dumps(entries)

    @property
    def end(self) -> datetime:
        """The simulated time the run stops at: the close of the period's last bar."""
        return self.start + timedelta(days=self.days)


@dataclass
class RecordingStarter:
    """The ``ExecutionStarter`` port, recording starts (idempotent on the name, like Step Functions)."""

    started: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    def start(self, name: str, execution_input: Mapping[str, Any]) -> str:
        previous = self.started.setdefault(name, execution_input)
        if previous != execution_input:
            raise ValueError(f"execution {name} already started with another input")
        return f"arn:aws:states:{REGION}:{ACCOUNT_ID}:execution:order-placement:{name}"


class CountingBus:
    """The real EventBridge bus adapter, counting what is published by event type."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.counts: Counter[str] = Counter()

    def publish(self, events: Sequence[Envelope]) -> None:
        self.inner.publish(events)
        self.counts.update(e.type for e in events)


@dataclass
class PipelineRun:
    """What the run did and what the store holds afterwards (frames read back from PostgreSQL)."""

    config: PipelineConfig
    replayed: dict[str, int]  # symbol -> bars the replay venue serves up to the end
    bars: pd.DataFrame
    gaps: pd.DataFrame
    regimes: pd.DataFrame
    correlations: pd.DataFrame
    signals: pd.DataFrame
    plans: pd.DataFrame
    risk: pd.DataFrame
    queues: pd.DataFrame  # per queue: received, succeeded, failed, redriven, depth, dlq depth
    events: dict[str, int]
    firings: dict[str, int]
    firing_errors: list[str]
    executions: dict[str, Mapping[str, Any]]
    stats: DispatchStats
    seconds: float
    seconds_per_day: list[float]
    paper: PaperRun | None = None

    @property
    def handler_errors(self) -> int:
        return self.stats.failed + len(self.firing_errors)

    @property
    def dlq_total(self) -> int:
        return int(self.queues["dlq depth"].sum()) if len(self.queues) else 0

    @property
    def queue_total(self) -> int:
        return int(self.queues["depth"].sum()) if len(self.queues) else 0


def schema_url(database_url: str, schema: str) -> str:
    """``database_url`` whose sessions use ``schema`` first (``search_path``)."""
    sep = "&" if "?" in database_url else "?"
    return f"{database_url}{sep}options=-csearch_path%3D{schema}"


def prepare_schema(database_url: str, schema: str) -> str:
    """Drop ``schema``, migrate it afresh and return a URL whose sessions use it."""
    try:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    except psycopg.OperationalError as exc:
        raise PipelineError(f"PostgreSQL is not reachable at {database_url}: {exc}") from exc
    migrate(database_url, schema)
    return schema_url(database_url, schema)


def replay_frames(config: PipelineConfig) -> dict[tuple[str, str], pd.DataFrame]:
    """Catalogue daily bars per symbol, up to the end of the period (nothing later can leak)."""
    try:
        daily = catalogue.bitstamp_daily()
    except Exception as exc:  # the catalogue's own errors say which file and where it looked
        raise PipelineError(f"replay data unavailable: {exc}") from exc
    frames: dict[tuple[str, str], pd.DataFrame] = {}
    last = pd.Timestamp(config.end).tz_convert(None)
    for asset in config.assets:
        if asset not in daily:
            raise PipelineError(f"no replay data for {asset}; the catalogue has {', '.join(daily)}")
        first = pd.Timestamp(config.backfill_start).tz_convert(None)
        frame = daily[asset].loc[first : last - pd.Timedelta(days=1)]
        if frame.empty or frame.index[-1] < last - pd.Timedelta(days=1):
            raise PipelineError(
                f"replay data for {asset} ends at {daily[asset].index[-1]:%Y-%m-%d}, before {last:%Y-%m-%d}"
            )
        frames[(config.symbol(asset), config.timeframe)] = frame
    return frames


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        wiring.reset()


@contextlib.contextmanager
def _quiet_handlers() -> Iterator[None]:
    """Handlers log JSON and print EMF metrics per invocation; the demo's console shows progress instead."""
    from desk.observability import logger

    level = logger.log_level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
            yield
    finally:
        logger.setLevel(level)


def _demo_scheduler(cloud: LocalCloud, clock: FixedClock) -> Scheduler:
    schedules = {
        cloud.name(name): spec.model_copy(update={"function": cloud.name(spec.function), "expression": expression})
        for name, spec in cloud.topology.schedules.items()
        if (expression := DEMO_SCHEDULES.get(name))
    }
    return Scheduler(schedules, clock, cloud.shim.call, REGION, ACCOUNT_ID)


def _importable(root: str) -> None:
    # The shim imports ``functions.<name>.handler`` as Lambda would from the package root; a script
    # started outside the repository (not ``python -m`` from it) would not find them.
    if importlib.util.find_spec("functions") is None:
        sys.path.insert(0, root)
    if importlib.util.find_spec("functions") is None:
        raise PipelineError(f"the handler package 'functions' is not importable from {root}")


def _register_handlers(cloud: LocalCloud) -> None:
    # Registered by the entry point the stacks configure (``lambda_handler``), not the shim's default
    # lookup, which changed under this module once (``handler``): the demo runs what deploys.
    for function in PIPELINE_FUNCTIONS:
        module = importlib.import_module(cloud.topology.functions[function].module)
        cloud.register(function, module.lambda_handler)


def _depth(url: str) -> int:
    attrs = clients.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _queues(cloud: LocalCloud, stats: DispatchStats) -> pd.DataFrame:
    rows = {}
    for queue, url in cloud.queue_urls.items():
        counts = stats.per_queue.get(queue, {"received": 0, "succeeded": 0, "failed": 0, "redriven": 0})
        rows[queue] = {**counts, "depth": _depth(url), "dlq depth": _depth(cloud.dlq_urls[queue])}
    return pd.DataFrame(rows).T


def _flush(redis_url: str) -> None:
    """Redis holds only what can be rebuilt; a run starts without another run's (newer) quotes."""
    import redis

    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        client.flushdb()
        client.close()
    except redis.RedisError as exc:
        raise PipelineError(f"Redis is not reachable at {redis_url}: {exc}") from exc


def redis_db_url(base_url: str, db: int) -> str:
    """``base_url`` on logical database ``db`` (TCP or the embedded server's unix socket)."""
    parts = urlsplit(base_url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}?db={db}"
    return urlunsplit(parts._replace(path=f"/{db}"))


def _read(url: str, query: str) -> pd.DataFrame:
    with psycopg.connect(url) as conn:
        cur = conn.execute(query)
        columns = [d.name for d in cur.description or ()]
        return pd.DataFrame(cur.fetchall(), columns=columns)


def read_back(url: str) -> dict[str, pd.DataFrame]:
    """What the store holds after the run, as frames for the report."""
    return {
        "bars": _read(
            url,
            "SELECT venue, symbol, timeframe, count(*) AS bars, min(ts) AS first, max(ts) AS last "
            "FROM bars GROUP BY 1, 2, 3 ORDER BY 2",
        ),
        "gaps": _read(url, "SELECT symbol, start_ts, end_ts, missing FROM bar_gaps ORDER BY symbol, start_ts"),
        "regimes": _read(url, "SELECT symbol, ts, label, model FROM regimes ORDER BY symbol, ts"),
        "correlations": _read(
            url, 'SELECT ts, method, "window", symbols, matrix FROM correlation_snapshots ORDER BY ts, method'
        ),
        "signals": _read(
            url,
            "SELECT signal_id, strategy, symbol, ts, target_weight, strength, regime FROM signals ORDER BY ts, symbol",
        ),
        "plans": _read(
            url, "SELECT plan_id, symbol, side, quantity, created_at, document FROM plans ORDER BY created_at"
        ),
        "risk": _read(
            url,
            "SELECT portfolio, ts, confidence, var, cvar, method, equity, gross_exposure "
            "FROM risk_snapshots ORDER BY ts",
        ),
    }


def run_pipeline(
    database_url: str,
    redis_url: str,
    config: PipelineConfig | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> PipelineRun:
    """Run the pipeline over ``config``'s period on a fresh ``config.schema``; see the module docstring.

    ``database_url`` is the server's URL (the schema is dropped, migrated and used through
    ``search_path``). Raises :class:`PipelineError` when data or a server is missing.
    """
    cfg = config or PipelineConfig()
    if cfg.days < 1:
        raise PipelineError("the replayed period needs at least one day")
    frames = replay_frames(cfg)
    url = prepare_schema(database_url, cfg.schema)
    _flush(redis_url)
    started = time.perf_counter()
    env = {"DESK_DATABASE_URL": url, "DESK_REDIS_URL": redis_url, "DESK_UNIVERSE": cfg.universe_json()}
    clock = FixedClock(cfg.start + _RISK_OFFSET)  # after the period's first risk run: none before any bar
    symbols = [cfg.symbol(a) for a in cfg.assets]
    replay = FrameMarketData(
        cfg.venue, frames, clock=clock, drop_empty=True, instruments=paper_instruments(cfg.venue, symbols)
    )
    starter = RecordingStarter()
    per_day: list[float] = []
    firings: list[Firing] = []
    with _environment(env), LocalCloud() as cloud, _quiet_handlers():
        bus = CountingBus(wiring.event_bus())
        wiring.install(
            clock=lambda: clock,
            market_data=lambda name: replay,
            execution_starter=lambda: starter,
            event_bus=lambda: bus,
        )
        _importable(str(cloud.root))
        _register_handlers(cloud)
        scheduler = _demo_scheduler(cloud, clock)
        dispatcher = cloud.dispatcher()
        metrics_out = io.StringIO()
        for day in range(1, cfg.days + 1):
            t0 = time.perf_counter()
            close = cfg.start + timedelta(days=day)
            with contextlib.redirect_stdout(metrics_out):
                firings += scheduler.advance(close)
                dispatcher.drain()
                firings += scheduler.advance(close + _RISK_OFFSET)
                dispatcher.drain()
            metrics_out.seek(0)
            metrics_out.truncate()
            per_day.append(time.perf_counter() - t0)
            if progress is not None:
                progress(
                    f"  day {day:>4}/{cfg.days} {close - timedelta(days=1):%Y-%m-%d}  "
                    f"events {sum(bus.counts.values()):>5}  failed {dispatcher.stats.failed}  "
                    f"{per_day[-1]:5.2f} s"
                )
        paper = None
        if cfg.paper_trade:
            last_day = _last_day_plans(starter)
            if progress is not None:
                progress(f"  paper trading {len(last_day)} plans of {cfg.end - timedelta(days=1):%Y-%m-%d}")
            mids = {symbol: replay.fetch_ticker(symbol).bid for symbol in symbols}  # the last close
            with contextlib.redirect_stdout(metrics_out):  # EMF metric lines are for CloudWatch, not the console
                paper = trade_plans(cloud, last_day, clock, url, mids)
                dispatcher.drain()  # the order.completed events reach their consumers like every other event
        queues = _queues(cloud, dispatcher.stats)
        stats = dispatcher.stats
    replayed = {symbol: len(replay.series(symbol, tf)) for symbol, tf in frames}
    stored = read_back(url)
    return PipelineRun(
        config=cfg,
        replayed=replayed,
        **stored,
        queues=queues,
        events=dict(bus.counts),
        firings=dict(Counter(f.function for f in firings)),
        firing_errors=[f"{f.at:%Y-%m-%d %H:%M} {f.function}: {f.error}" for f in firings if f.error],
        executions=dict(starter.started),
        stats=stats,
        seconds=time.perf_counter() - started,
        seconds_per_day=per_day,
        paper=paper,
    )


def _last_day_plans(starter: RecordingStarter) -> list[ExecutionPlan]:
    plans = [ExecutionPlan.model_validate(payload) for payload in starter.started.values()]
    if not plans:
        return []
    newest = max(p.created_at for p in plans)
    return sorted((p for p in plans if p.created_at == newest), key=lambda p: p.symbol)
