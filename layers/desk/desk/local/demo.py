"""``make demo``: the desk's pipeline on the local cloud, then the quant layer, written up as one HTML report.

First the pipeline (:mod:`desk.local.desk_run`): the deployed handlers over replayed crypto bars,
with real PostgreSQL and Redis, read back from the store. Then the quant layer's showcase: S&P 500
regimes over 1990-2022, the correlation structure of 20 large US stocks, DCC correlation through
2008 and 2020, three portfolio constructions side by side. Every number comes from the desk's code
on data read through :mod:`desk.local.catalogue`; nothing is precomputed. ``--quant-only`` skips the
pipeline; a pipeline that cannot run (no data, no server) leaves a note and the rest of the report.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.dates import date2num
from matplotlib.patches import Rectangle

from desk.local import catalogue
from desk.local.demo_orders import section_orders
from desk.local.desk_run import PipelineConfig, PipelineRun, redis_db_url, replay_frames, run_pipeline
from desk.local.report import Report, Section

DEMO_REDIS_DB = 13  # the demo flushes its Redis database first: keep it off the tests' (1 + worker)


def _x(when: object) -> float:
    """A timestamp as matplotlib's date number (for axvspan on a date axis)."""
    return float(date2num(pd.Timestamp(str(when))))  # type: ignore[no-untyped-call]


REGIME_COLOURS = {"TRENDING": "#2e9d5b", "RANGING": "#4f7fd6", "CHOPPY": "#e0a431", "CRISIS": "#d64545"}


def _shade_regimes(ax: Axes, labels: pd.Series) -> None:
    """Shade contiguous runs of each regime label behind a time-series plot."""
    from quant.regime import regime_history

    runs = regime_history(labels)
    for run in runs.itertuples():
        ax.axvspan(
            _x(run.start),
            _x(run.end),
            color=REGIME_COLOURS[str(run.regime)],
            alpha=0.25,
            lw=0,
        )
    handles = [Rectangle((0, 0), 1, 1, color=c, alpha=0.4) for c in REGIME_COLOURS.values()]
    ax.legend(handles, list(REGIME_COLOURS), loc="upper left", fontsize=8, ncol=4)


def section_regimes(report: Report) -> None:
    from quant.markov_switching import fit_markov_switching
    from quant.regime import classify_regimes_from_close, next_regime_probabilities, transition_matrix

    sec = report.section("S&P 500 regimes, 1990-2022")
    index = catalogue.sp500_index()
    labels = classify_regimes_from_close(index)
    valid = labels.dropna()
    fig, ax = plt.subplots(figsize=(12, 4.2))
    ax.semilogy(index.index, index.to_numpy(), color="#1d2330", lw=0.8)
    _shade_regimes(ax, valid)
    ax.set_title("S&P 500 (log scale) with the regime of each day")
    sec.figure(fig, "Rule-based regimes from ADX, choppiness, Bollinger bandwidth and realised volatility.")
    share = valid.value_counts(normalize=True).rename("share of days")
    sec.table(share.to_frame(), "How often each regime occurs.", "{:.1%}")
    tm = transition_matrix(valid)
    sec.table(tm, "Empirical daily transition matrix (row: today's regime, column: tomorrow's).", "{:.3f}")
    sec.table(
        next_regime_probabilities(valid, steps=5).to_frame("P(regime in 5 days)"),
        f"From the last label ({valid.iloc[-1]}), the regime five trading days ahead.",
        "{:.3f}",
    )

    returns = 100 * np.log(index).diff().dropna()
    window = returns.loc["2005":"2012"]
    ms = fit_markov_switching(window)
    fig, ax = plt.subplots(figsize=(12, 3))
    ax.plot(ms.smoothed.index, ms.smoothed.iloc[:, ms.high_vol_state], color="#d64545")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Two-state Markov-switching volatility model: smoothed P(high-volatility state), 2005-2012")
    sec.figure(fig, "Hamilton filter + Kim smoother, parameters by maximum likelihood.")
    params = pd.DataFrame(
        {
            "mean (%/day)": ms.means,
            "sigma (%/day)": ms.sigmas,
            "expected duration (days)": ms.expected_durations,
        },
        index=["low volatility", "high volatility"],
    )
    sec.table(params, f"Fitted parameters (log-likelihood {ms.loglik:,.1f}).", "{:.3f}")


def section_correlation(report: Report) -> None:
    from quant.correlation import ledoit_wolf, pca, pearson

    sec = report.section("Correlation of 20 S&P 500 stocks")
    returns = catalogue.sp500_stocks().pct_change().dropna().loc["2018":"2022"]
    corr = pearson(returns)
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    im = ax.imshow(corr.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(corr)), corr.columns, rotation=90, fontsize=8)
    ax.set_yticks(range(len(corr)), corr.index, fontsize=8)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title("Pearson correlation of daily returns, 2018-2022")
    sec.figure(fig)
    lw = ledoit_wolf(returns)
    sec.text(f"Ledoit-Wolf shrinkage intensity on the same window: {lw.shrinkage:.4f}.")
    res = pca(returns, n_components=3)
    loadings = pd.DataFrame(np.asarray(res.loadings), index=returns.columns, columns=["PC1", "PC2", "PC3"])
    fig, ax = plt.subplots(figsize=(12, 3.5))
    loadings.plot.bar(ax=ax, width=0.8)
    ratios = ", ".join(f"{r:.1%}" for r in np.asarray(res.explained_variance_ratio)[:3])
    ax.set_title(f"First principal components (explained variance {ratios})")
    sec.figure(fig, "PC1 is the market factor: every stock loads on it with the same sign.")


def section_dcc(report: Report) -> None:
    from quant.dcc import dcc_garch

    sec = report.section("DCC-GARCH correlation through 2008 and 2020")
    pair = ["MSFT", "XOM"]
    returns = 100 * catalogue.sp500_stocks()[pair].pct_change().dropna().loc["2005":"2021"]
    res = dcc_garch(returns)
    rho = pd.Series(np.asarray(res.correlations)[:, 0, 1], index=returns.index)
    fig, ax = plt.subplots(figsize=(12, 3.5))
    ax.plot(rho.index, rho.to_numpy(), color="#1d2330", lw=0.8)
    ax.plot(rho.index, returns[pair[0]].rolling(60).corr(returns[pair[1]]).to_numpy(), color="#8aa2d6", lw=0.8)
    for start, end in (("2008-09-01", "2009-03-31"), ("2020-02-19", "2020-04-30")):
        ax.axvspan(_x(start), _x(end), color="#d64545", alpha=0.15, lw=0)
    ax.legend(["DCC conditional correlation", "60-day rolling correlation"], loc="lower left", fontsize=8)
    ax.set_title(f"{pair[0]} / {pair[1]} conditional correlation (crises shaded)")
    sec.figure(fig, "Two-step DCC(1,1) (Engle 2002) on GARCH(1,1)-standardised daily % returns.")
    garch = res.garch_params.copy()
    sec.table(garch, f"Univariate GARCH(1,1) parameters; DCC a = {res.a:.4f}, b = {res.b:.4f}.", "{:.4f}")


def section_portfolios(report: Report) -> None:
    from quant.portfolio import diversification_ratio, hrp, min_variance, risk_contributions, risk_parity

    sec = report.section("Three portfolios side by side")
    prices = catalogue.sp500_stocks()
    train = prices.loc["2017":"2019"].pct_change().dropna()
    test = prices.loc["2020":"2022"].pct_change().dropna()
    cov = train.cov() * 252
    weights = pd.DataFrame({"min variance": min_variance(cov), "risk parity": risk_parity(cov), "HRP": hrp(train)}).loc[
        train.columns
    ]
    fig, ax = plt.subplots(figsize=(12, 3.8))
    weights.plot.bar(ax=ax, width=0.8)
    ax.set_title("Weights estimated on 2017-2019 daily returns")
    sec.figure(fig)
    rows = {}
    sigma = cov.to_numpy()
    for name in weights.columns:
        w = weights[name].to_numpy()
        port = test.to_numpy() @ w
        rc = np.asarray(risk_contributions(w, sigma))
        rows[str(name)] = {
            "ex-ante vol": float(np.sqrt(w @ sigma @ w)),
            "diversification ratio": float(diversification_ratio(w, sigma)),
            "max risk share": float(rc.max() / rc.sum()),
            "2020-22 return (ann.)": float(np.prod(1.0 + port) ** (252 / len(port)) - 1.0),
            "2020-22 vol (ann.)": float(port.std(ddof=1) * np.sqrt(252)),
        }
    sec.table(pd.DataFrame(rows).T, "Ex-ante risk on the estimation window; realised out of sample 2020-2022.")


def _equity_and_drawdown(sec: Section, returns: pd.DataFrame, title: str) -> None:
    from quant.metrics import drawdown_series, summary

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 5.5), sharex=True, height_ratios=[2, 1])
    for name in returns.columns:
        series = returns[name]
        top.plot(series.index, np.cumprod(1.0 + series.to_numpy()), lw=0.9, label=str(name))
        bottom.plot(series.index, np.asarray(drawdown_series(series)), lw=0.8)
    top.set_yscale("log")
    top.legend(fontsize=8, loc="upper left")
    top.set_title(title)
    bottom.set_ylabel("drawdown")
    sec.figure(fig, "Net of fees and half-spread; weights decided at a close are traded at the next close.")
    sec.table(summary(returns), "Performance (252 periods a year, no risk-free rate; empyrical conventions).")


def section_backtests(report: Report) -> None:
    from quant.backtest import backtest
    from quant.regime import classify_regimes_from_close
    from quant.signals import MomentumStrategy, PairsStrategy, StrategyData, scan_pairs

    sec = report.section("Strategies backtested with costs")

    def run(prices: pd.DataFrame, targets: pd.DataFrame) -> pd.Series:
        return backtest(prices, targets, fee_bps=1.0, half_spread_bps=2.0).returns

    index = catalogue.sp500_index().loc["1995":]
    prices = index.to_frame("SP500")
    labels = classify_regimes_from_close(index)
    gated = MomentumStrategy(lookback=252, skip=21, long_only=True)
    ungated = MomentumStrategy(lookback=252, skip=21, long_only=True, regimes=None)
    data = StrategyData(prices, regimes=labels)
    runs = {
        "momentum, TRENDING only": run(prices, gated.target_positions(data)),
        "momentum, every regime": run(prices, ungated.target_positions(data)),
        "buy and hold": prices["SP500"].pct_change().fillna(0.0),
    }
    sec.text(
        "Time-series momentum (12-1 months, long or flat) on the S&P 500 since 1995, switched on only in "
        "TRENDING regimes, against the same strategy in every regime and buy-and-hold."
    )
    _equity_and_drawdown(sec, pd.DataFrame(runs).iloc[253:], "Regime-switched momentum on the S&P 500")

    stocks = catalogue.sp500_stocks().loc["2012":"2022"]
    formation = stocks.loc["2012":"2014"].apply(np.log)
    ranked = scan_pairs(formation, log_prices=False)
    best = ranked.iloc[0]
    y, x = str(best["y"]), str(best["x"])
    pair = stocks[[y, x]]
    strategy = PairsStrategy(y, x, formation=len(formation), window=60, entry=2.0, exit=0.5, stop=4.0)
    pair_returns = run(pair, strategy.target_positions(StrategyData(pair)))
    sec.text(
        f"Pairs trading: the most cointegrated pair of the 20 stocks over 2012-2014 (Engle-Granger, "
        f"MacKinnon p-value {float(best['pvalue']):.4f}, half-life {float(best['half_life']):.0f} days) is "
        f"{y}/{x}; the hedge ratio is fixed on that formation window and the spread traded from 2015 on "
        "(enter at |z| > 2, exit at |z| < 0.5, stop at |z| > 4, 60-day z-score)."
    )
    sec.table(ranked.head(5)[["y", "x", "hedge_ratio", "adf_stat", "pvalue", "half_life"]], "Top pairs, 2012-2014.")
    pairs_returns = pd.DataFrame({f"pairs {y}/{x}": pair_returns}).loc["2015":]
    _equity_and_drawdown(sec, pairs_returns, f"Pairs strategy {y}/{x}, 2015-2022")


def section_var(report: Report) -> None:
    from quant.risk import var_backtest, var_historical

    sec = report.section("Rolling 99% VaR and its backtest")
    returns = catalogue.sp500_index().pct_change().dropna()
    window, level = 250, 0.99
    windows = np.lib.stride_tricks.sliding_window_view(returns.to_numpy(), window).T
    # VaR estimated at the close of day t from the last 250 returns is the forecast for day t + 1.
    estimate = pd.Series(np.asarray(var_historical(windows, level)), index=returns.index[window - 1 :])
    forecast = estimate.shift(1).reindex(returns.index)
    bt = var_backtest(returns, forecast, level)
    fig, ax = plt.subplots(figsize=(12, 4))
    ax.plot(returns.index, returns.to_numpy(), lw=0.4, color="#8a93a6", label="daily return")
    ax.plot(forecast.index, -forecast.to_numpy(), lw=0.9, color="#d64545", label="-VaR 99% (250-day historical)")
    hits = bt.breaches[bt.breaches]
    ax.scatter(hits.index, returns.reindex(hits.index).to_numpy(), s=9, color="#1d2330", zorder=3, label="breach")
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("S&P 500: one-day 99% historical VaR (linear quantile interpolation) and its breaches")
    sec.figure(fig)
    table = pd.DataFrame(
        {
            "value": [
                bt.n,
                bt.count,
                bt.expected,
                bt.kupiec.statistic,
                bt.kupiec.p_value,
                bt.independence.statistic,
                bt.independence.p_value,
                bt.conditional_coverage.statistic,
                bt.conditional_coverage.p_value,
            ]
        },
        index=[
            "days tested",
            "breaches",
            "expected breaches",
            "Kupiec POF LR",
            "Kupiec p-value",
            "Christoffersen independence LR",
            "independence p-value",
            "conditional coverage LR",
            "conditional coverage p-value",
        ],
    )
    sec.table(table, f"Basel traffic light over the whole sample: {bt.zone}.", "{:,.4f}")
    sec.note(
        "Breaches cluster in 2008 and 2020: a 250-day historical VaR reacts slowly to a volatility jump, "
        "which the independence test detects even when the breach count is close to expectation."
    )


SECTIONS: tuple[Callable[[Report], None], ...] = (
    section_regimes,
    section_correlation,
    section_dcc,
    section_portfolios,
    section_backtests,
    section_var,
)


def section_pipeline(report: Report, run: PipelineRun) -> None:
    """The pipeline's run on the local cloud, read back from the store and the dispatcher."""
    cfg = run.config
    sec = report.section("The desk's pipeline on the local cloud")
    sec.text(
        f"{len(cfg.assets)} daily series ({', '.join(cfg.symbol(a) for a in cfg.assets)} on venue '{cfg.venue}', "
        f"Bitstamp daily bars from desk.local.catalogue) replayed over {cfg.days} simulated days from "
        f"{cfg.start:%Y-%m-%d}, after a backfill from {cfg.backfill_start:%Y-%m-%d} so the regime classifier "
        "has its warm-up. The deployed handlers ran in process behind moto (SQS, EventBridge, DynamoDB "
        "idempotency), with PostgreSQL and Redis for real; the market-data port was pinned to a replay venue that "
        "serves a bar only once the simulated clock has passed its close, and the clock to the scheduler's."
    )
    sec.note(
        "Schedules run at the demo's own cadence: the manifest's ingest schedule is rate(1 minute), which over "
        f"{cfg.days} simulated days would invoke the planner {cfg.days * 1440:,} times for one new daily bar a day. "
        "The same targets fire daily instead (ingest at 00:00 UTC, the daily close; risk at 00:05, once the day's "
        "events are consumed). The hourly correlation refresh is left out because correlation already runs on "
        "every bars.ingested of the daily timeframe; reconciliation runs after the paper trading instead. "
        "Execution starts during the replay went to a recording starter (no fills, so the book stays flat and a "
        "standing target is planned again each day); the last day's plans were then traded on a paper venue "
        "(next section)."
    )
    bars = run.bars.set_index("symbol") if len(run.bars) else pd.DataFrame(columns=["bars", "first", "last"])
    gaps = run.gaps.groupby("symbol")["missing"].agg(["count", "sum"]) if len(run.gaps) else pd.DataFrame()
    ingest = pd.DataFrame(
        {
            "bars replayed": pd.Series(run.replayed),
            "bars stored": bars["bars"].reindex(list(run.replayed)).fillna(0).astype(int),
            "first": bars["first"].reindex(list(run.replayed)).astype(str),
            "last": bars["last"].reindex(list(run.replayed)).astype(str),
            "gaps recorded": gaps.get("count", pd.Series(dtype=int)).reindex(list(run.replayed)).fillna(0).astype(int),
            "bars missing": gaps.get("sum", pd.Series(dtype=int)).reindex(list(run.replayed)).fillna(0).astype(int),
        }
    )
    sec.table(
        ingest,
        "Bars ingested per series. Each job pages through the venue, then asks once more for every hole "
        "(the repair); a hole the venue still cannot fill is recorded as a gap, never invented. The source's "
        "zero-volume days are holes here, as a real venue returns no bar for a day without trades.",
        "{:,.0f}",
    )
    _regime_timeline(sec, run)
    _correlation_tables(sec, run)
    _signals_and_plans(sec, run)
    if len(run.risk):
        risk = run.risk.assign(ts=run.risk["ts"].astype(str)).set_index("ts").tail(5)
        sec.table(
            risk.drop(columns=["portfolio"]),
            f"Risk snapshots: {len(run.risk)} stored (one per daily risk run); the last five. Nothing fills "
            "during the replay, so the book is flat and VaR is zero.",
            "{:,.4f}",
        )
    counts = run.queues.copy()
    sec.table(
        counts,
        f"Every queue and its DLQ: messages received, succeeded, failed and redriven by the dispatcher, and "
        f"what is left at the end ({run.queue_total} on the queues, {run.dlq_total} in DLQs; "
        f"{run.handler_errors} handler errors).",
        "{:,.0f}",
    )
    events = pd.Series(run.events, name="published").sort_index().to_frame()
    events.loc["ingest.requested (planner → SQS)"] = run.stats.per_queue.get("ingest-jobs", {}).get("received", 0)
    for function, n in sorted(run.firings.items()):
        events.loc[f"scheduled invocations: {function}"] = n
    events.loc["executions started (recorded)"] = len(run.executions)
    sec.table(events, "Events published on the bus by type, scheduled invocations and execution starts.", "{:,.0f}")
    for error in run.firing_errors[:10]:
        sec.note(f"Scheduled invocation failed: {error}")
    sec.text(
        f"Pipeline run: {run.seconds:.1f} s in all, {float(np.mean(run.seconds_per_day)):.2f} s per simulated day "
        f"on average (slowest {max(run.seconds_per_day):.2f} s, the backfill day)."
    )


def _regime_timeline(sec: Section, run: PipelineRun) -> None:
    regimes = run.regimes
    if not len(regimes):
        sec.note("No regime was stored: the series are still in the classifier's warm-up.")
        return
    frames = replay_frames(run.config)
    symbols = list(run.replayed)
    fig, axes = plt.subplots(len(symbols), 1, figsize=(12, 2.2 * len(symbols)), sharex=True, squeeze=False)
    for ax, symbol in zip(axes[:, 0], symbols, strict=True):
        labels = regimes[regimes["symbol"] == symbol].set_index("ts")["label"]
        if labels.empty:
            continue
        labels.index = pd.DatetimeIndex(labels.index).tz_convert(None)
        close = frames[(symbol, run.config.timeframe)]["close"].loc[labels.index[0] : labels.index[-1]]
        ax.plot(close.index, close.to_numpy(), color="#1d2330", lw=0.9)
        # Each label holds for its whole bar [ts, ts + 1 day); a day without a bar (a gap) breaks a spell.
        gap = labels.index.to_series().diff().gt(pd.Timedelta(days=1))
        for _, spell in labels.groupby((labels.ne(labels.shift()) | gap).cumsum()):
            colour = REGIME_COLOURS[str(spell.iloc[0])]
            ax.axvspan(_x(spell.index[0]), _x(spell.index[-1] + pd.Timedelta(days=1)), color=colour, alpha=0.25, lw=0)
        ax.set_ylabel(symbol, fontsize=9)
    handles = [Rectangle((0, 0), 1, 1, color=c, alpha=0.4) for c in REGIME_COLOURS.values()]
    axes[0, 0].legend(handles, list(REGIME_COLOURS), loc="upper left", fontsize=8, ncol=4)
    axes[0, 0].set_title("Regime of each daily bar, as the regime function stored it, over the close")
    sec.figure(fig, "The regime timeline read back from PostgreSQL (table regimes); unshaded days have no bar.")
    share = regimes.groupby(["symbol", "label"]).size().unstack(fill_value=0)
    changes = {
        str(sym): int((group["label"] != group["label"].shift()).sum() - 1) for sym, group in regimes.groupby("symbol")
    }
    share["changes"] = pd.Series(changes)
    sec.table(share, f"Days per regime and regime changes ({len(regimes)} regimes stored).", "{:,.0f}")


def _correlation_tables(sec: Section, run: PipelineRun) -> None:
    snaps = run.correlations
    if not len(snaps):
        sec.note("No correlation snapshot was stored.")
        return
    rows: dict[str, dict[str, float]] = {}
    for row in snaps[snaps["ts"] == snaps["ts"].max()].itertuples():
        symbols = list(row.symbols)
        matrix = np.asarray(row.matrix, dtype=float).reshape(len(symbols), len(symbols))
        for i, a in enumerate(symbols):
            for j in range(i + 1, len(symbols)):
                rows.setdefault(f"{a} / {symbols[j]}", {})[f"{row.method} ({row.window})"] = float(matrix[i, j])
    counts = snaps.groupby("method").size()
    summary = ", ".join(f"{m}: {n}" for m, n in counts.items())
    sec.table(
        pd.DataFrame(rows).T,
        f"Correlation snapshots stored: {len(snaps)} ({summary}); pairwise correlations of the last one, "
        f"{snaps['ts'].max():%Y-%m-%d}.",
        "{:.3f}",
    )


def _signals_and_plans(sec: Section, run: PipelineRun) -> None:
    signals = run.signals
    if len(signals):
        by = signals.groupby(["strategy", "symbol", "regime"], dropna=False)["target_weight"].agg(["count", "mean"])
        sec.table(by, f"Signals stored: {len(signals)}, by strategy, symbol and regime (mean target weight).")
    else:
        sec.note("No signal was generated over the period.")
    plans = run.plans
    if not len(plans):
        sec.note("No execution plan was created.")
        return
    docs = plans["document"]
    table = pd.DataFrame(
        {
            "created": plans["created_at"].astype(str),
            "symbol": plans["symbol"],
            "side": plans["side"],
            "quantity": plans["quantity"].astype(float),
            "schedule": [d.get("schedule") for d in docs],
            "slices": [len(d.get("slices", ())) for d in docs],
            "expected cost (bps)": [d.get("expected_cost_bps") for d in docs],
        }
    ).set_index("created")
    costs = pd.to_numeric(table["expected cost (bps)"], errors="coerce")
    sec.table(
        table.tail(15),
        f"Execution plans: {len(plans)} created (mean estimated cost {costs.mean():.2f} bps); the last 15. "
        f"{len(run.executions)} order-placement starts were recorded, one per plan id. Nothing fills during the "
        "replay, so the book stays flat and a standing target is planned again at each new bar.",
        "{:,.4f}",
    )


def run_pipeline_section(report: Report, config: PipelineConfig) -> None:
    """Start the servers, run the pipeline and write its section; a failure becomes a note, not a crash."""
    from desk.local.servers import postgres_server, redis_server

    started = time.perf_counter()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="lambda-desk-demo-") as workdir,
            postgres_server(Path(workdir)) as database_url,
            redis_server(Path(workdir)) as redis_url,
        ):
            run = run_pipeline(database_url, redis_db_url(redis_url, DEMO_REDIS_DB), config, progress=_progress)
        section_pipeline(report, run)
        section_orders(report, run)
    except Exception as exc:  # the quant report must still be written
        print(f"  pipeline failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        sec = report.section("The desk's pipeline on the local cloud")
        sec.note(f"The pipeline did not run: {type(exc).__name__}: {exc}")
        return
    print(f"  {'pipeline':<14} {time.perf_counter() - started:6.1f} s", flush=True)


def _progress(line: str) -> None:
    print(line, flush=True)


def run_demo(out_dir: Path, *, pipeline: PipelineConfig | None = None, quant_only: bool = False) -> Path:
    """Write the report to ``out_dir``: the pipeline on the local cloud (unless ``quant_only``), then the quant."""
    started = time.perf_counter()
    report = Report(
        "Lambda Desk — demo report",
        "The quant layer on real market data (S&P 500 1990-2022, 20 large US stocks); "
        "sources and checksums in desk.local.catalogue.",
    )
    if not quant_only:
        report.subtitle = (
            "The desk's pipeline on the local cloud over replayed crypto bars, then the quant layer on real "
            "market data (S&P 500 1990-2022, 20 large US stocks); sources and checksums in desk.local.catalogue."
        )
        run_pipeline_section(report, pipeline or PipelineConfig())
    for build in SECTIONS:
        t0 = time.perf_counter()
        build(report)
        print(f"  {build.__name__.removeprefix('section_'):<14} {time.perf_counter() - t0:6.1f} s", flush=True)
    report.subtitle += f" Built in {time.perf_counter() - started:.1f} s."
    return report.write(out_dir / "index.html")


def _section_names() -> list[str]:
    return [s.__name__ for s in SECTIONS]


__all__ = ["SECTIONS", "Section", "run_demo", "section_pipeline"]
