"""The demo path end to end: the desk's handlers on the local cloud over replayed bars, real servers."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from desk import wiring
from desk.local.demo import section_pipeline
from desk.local.demo_orders import section_orders
from desk.local.desk_run import PipelineConfig, PipelineError, run_pipeline
from desk.local.report import Report
from desk.settings import get_settings


def test_the_pipeline_over_a_replayed_period(database_url: str, pg_schema: str, redis_url: str) -> None:
    # Given 40 days of two daily series after a backfill long enough for the regime warm-up; spring 2019
    # rose, so the long-only momentum book wants to buy on the last day (a falling period plans nothing)
    config = PipelineConfig(
        start=datetime(2019, 4, 1, tzinfo=UTC),
        days=40,
        backfill_start=datetime(2018, 6, 1, tzinfo=UTC),
        assets=("BTC", "ETH"),
        schema=pg_schema,
    )
    # When the pipeline runs on the local cloud, one simulated day at a time
    run = run_pipeline(database_url, redis_url, config)

    # Then every replayed bar is stored, up to the period's last bar
    stored = dict(zip(run.bars["symbol"], run.bars["bars"], strict=True))
    assert stored == run.replayed
    assert set(stored) == {"BTC/USDT", "ETH/USDT"} and all(n > config.days for n in stored.values())
    assert set(run.bars["last"]) == {pd.Timestamp(config.end) - pd.Timedelta(days=1)}
    # And regimes and correlation snapshots were stored, within the period
    assert len(run.regimes) >= 1 and len(run.correlations) >= 1
    assert pd.Timestamp(config.start) <= run.regimes["ts"].min() <= run.regimes["ts"].max() < config.end
    assert run.events["bars.ingested"] == config.days * len(config.assets)
    # And every queue and DLQ is empty, and no handler failed
    assert run.queue_total == 0 and run.dlq_total == 0
    assert run.handler_errors == 0, run.firing_errors
    assert (run.queues["failed"] == 0).all() and (run.queues["redriven"] == 0).all()
    assert run.firings["ingest_planner"] == config.days
    assert run.queues.loc["ingest-jobs", "succeeded"] == config.days * len(config.assets)
    # And the process is left as it was found: pins undone, settings off the run's schema
    assert (wiring.market_data.__name__, wiring.clock.__name__) == ("market_data", "clock")
    assert pg_schema not in get_settings().database_url
    # And the last day's plans went to the order-placement state machine on the paper venue: every execution
    # is final, either worked (one venue order per child, all filled) or refused by the pre-trade gate with
    # its reason on the refused order; and both reconciliation runs found the ledger equal to the venue
    paper = run.paper
    assert paper is not None and len(paper.plans) >= 1
    assert set(paper.plans["status"]) <= {"SUCCEEDED", "FAILED (PreTradeRejected)"}, paper.plans["cause"].tolist()
    refused = paper.orders[paper.orders["state"] == "rejected"]
    assert all('"accepted": false' in reason for reason in refused["reject_reason"])
    assert set(paper.orders["state"]) <= {"filled", "rejected"}
    assert paper.venue_orders == (paper.orders["state"] == "filled").sum()
    assert list(paper.reconciliations["status"]) == ["clean", "clean"]
    assert pd.Timestamp(config.end) <= paper.orders["created_at"].min()  # traded after the last close
    # And the report sections render from the run
    report = Report("t", "t")
    section_pipeline(report, run)
    section_orders(report, run)
    page = report.render()
    assert "regimes stored" in page and "Correlation snapshots stored" in page and "0 in DLQs" in page
    assert "implementation shortfall" in page and "Reconciliation runs" in page


def test_a_missing_database_is_a_clear_error() -> None:
    with pytest.raises(PipelineError, match="PostgreSQL is not reachable"):
        run_pipeline("postgresql://127.0.0.1:1/none", "redis://127.0.0.1:1/0", PipelineConfig(days=1))
