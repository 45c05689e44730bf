"""The demo report's orders section: the last day's plans worked on a paper venue, and the reconciliation runs."""

from __future__ import annotations

from decimal import Decimal

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from desk.local.desk_run import PipelineRun
from desk.local.paper_trading import PAPER_SPREAD_BPS, PaperRun
from desk.local.report import Report

__all__ = ["section_orders"]


def _filled_over_time(paper: PaperRun) -> Figure:
    fig, ax = plt.subplots(figsize=(11, 3.6))
    for plan in paper.plans.itertuples():
        fills = paper.fills[paper.fills["plan_id"] == plan.plan].sort_values("occurred_at")
        if not len(fills):
            continue
        total = float(Decimal(str(plan.quantity)))
        done = [float(q) / total for q in fills["quantity"].map(Decimal).cumsum()]
        times = pd.to_datetime(fills["occurred_at"])
        ax.step(times, done, where="post", marker="o", ms=3, label=f"{plan.symbol} {plan.side} ({plan.schedule})")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of the plan filled")
    ax.set_title("Fills over (virtual) time: each slice goes out at its scheduled time")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def section_orders(report: Report, run: PipelineRun) -> None:
    paper = run.paper
    sec = report.section("Orders: the last day's plans on a paper venue")
    if paper is None:
        sec.note("Paper trading was switched off for this run.")
        return
    if not len(paper.plans):
        sec.note("The last day produced no execution plan, so nothing was traded.")
        return
    sec.text(
        f"The {len(paper.plans)} plans of the last replayed day were started on the order-placement state machine "
        "(statemachines/order_placement.asl.json with its dev substitutions: slices wait for their time, polls "
        "every 5 s), its tasks run by the deployed order_tasks handler, against a paper Binance on 127.0.0.1 behind "
        f"the real ccxt client: Binance's filters, a static book {PAPER_SPREAD_BPS} bps wide around the last close, "
        "a 0.1 % taker fee. Every child order passed the pre-trade gate before it was sent, under a client order id "
        "<plan id>-<slice>. Time is virtual: Wait states advance the demo's clock instead of sleeping, so "
        f"{paper.virtual_minutes:.0f} minutes of trading took a moment; the two plans ran side by side."
    )
    plans = paper.plans.drop(columns=["cause"] if not paper.plans["cause"].astype(bool).any() else [])
    sec.table(
        plans.set_index("plan"),
        "Each plan: its execution's outcome, what was filled at what average price, and the implementation "
        "shortfall against the arrival price (fees included, bps; positive is a cost) next to the cost the "
        "optimiser estimated when it chose the schedule (its estimate includes market impact, which a static "
        "paper book does not charge).",
        "{:,.4f}",
    )
    sec.figure(_filled_over_time(paper), "Cumulative share of each plan filled, one step per child order.")
    orders = paper.orders.assign(
        sent=paper.orders["created_at"].astype(str),
        slice=paper.orders["client_order_id"].str.rsplit("-", n=1).str[-1].astype(int),
        plan=paper.orders["plan_id"].str[:10] + "…",
    )
    columns = ["plan", "slice", "sent", "order_type", "time_in_force", "limit_price", "quantity", "state",
               "filled_quantity", "average_price"]  # fmt: skip
    sec.table(
        orders[columns].set_index(["plan", "slice"]),
        f"Every child order as the ledger holds it ({len(orders)} rows; the paper venue received "
        f"{paper.venue_orders} orders, one per child). Market slices went out as IOC limits at the gate's collar.",
        "{:,.5f}",
    )
    recon = paper.reconciliations.assign(
        started=paper.reconciliations["started_at"].astype(str),
        detail=[str(d.get("drift", d.get("error", "")))[:80] for d in paper.reconciliations["details"]],
    )
    sec.table(
        recon[["run_id", "started", "status", "drift_count", "detail"]].set_index("run_id"),
        "Reconciliation runs after the trading (the reconciliation state machine against the same venue: its "
        "open orders, fills and balances diffed with the ledger). Clean means the ledger equals the venue.",
        "{:,.0f}",
    )
