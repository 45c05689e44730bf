"""quant.costs: fee tiers, spread and square-root impact, pre-trade estimates, implementation shortfall."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from desk.local import catalogue
from quant import costs
from quant.costs import (
    FeeSchedule,
    FeeTier,
    Market,
    Order,
    estimate_cost,
    half_spread_cost,
    implementation_shortfall,
    sqrt_impact,
)

# A tiered table shaped like a crypto venue's: rebates for makers from the second tier.
TIERS = FeeSchedule(
    (
        FeeTier(0.0, 10.0, 20.0),
        FeeTier(1_000_000.0, 0.0, 15.0),
        FeeTier(10_000_000.0, -1.0, 10.0),
    )
)


def _book_tickers(name: str, n: int) -> pd.DataFrame:
    """The first ``n`` best bid/ask updates of a real Binance capture."""
    rows = []
    with catalogue.tick_lines(name) as fh:
        for line in fh:
            stamp, _, payload = line.partition(" ")
            msg = json.loads(payload)
            if msg.get("stream", "").endswith("@bookTicker"):
                d = msg["data"]
                rows.append((int(stamp), float(d["b"]), float(d["a"])))
                if len(rows) == n:
                    break
    frame = pd.DataFrame(rows, columns=["ns", "bid", "ask"])
    frame.index = pd.to_datetime(frame.pop("ns"), unit="ns")
    return frame


# ---------------------------------------------------------------- fees


@pytest.mark.parametrize(
    ("volume", "maker", "taker"),
    [(0.0, 10.0, 20.0), (999_999.99, 10.0, 20.0), (1_000_000.0, 0.0, 15.0), (5e6, 0.0, 15.0), (1e9, -1.0, 10.0)],
)
def test_fee_tier_is_the_highest_threshold_reached(volume: float, maker: float, taker: float) -> None:
    assert TIERS.rates(volume) == (maker, taker)


def test_fees_in_currency_including_a_maker_rebate() -> None:
    # Given a $250,000 fill
    # Then a taker at tier 0 pays 20 bps = $500 and a maker at the top tier earns 1 bp = $25
    assert TIERS.fee(250_000.0) == pytest.approx(500.0)
    assert TIERS.fee(250_000.0, "maker", volume_30d=2e7) == pytest.approx(-25.0)
    assert FeeSchedule.flat(-2.5, 7.5).fee(1e6, "maker") == pytest.approx(-250.0)


@pytest.mark.parametrize(
    ("tiers", "match"),
    [
        ((), "at least one tier"),
        ((FeeTier(10.0, 1.0, 2.0),), "start at volume 0"),
        ((FeeTier(0.0, 1.0, 2.0), FeeTier(0.0, 1.0, 2.0)), "strictly increasing"),
    ],
)
def test_fee_schedule_rejects_malformed_tables(tiers: tuple[FeeTier, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FeeSchedule(tiers)


def test_fee_tier_and_fee_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="taker_bps must be >= 0"):
        FeeTier(0.0, 1.0, -1.0)
    with pytest.raises(ValueError, match="notional must be >= 0"):
        TIERS.fee(-1.0)
    with pytest.raises(ValueError, match="liquidity must be"):
        TIERS.fee(1.0, "passive")
    with pytest.raises(ValueError, match="volume_30d must be >= 0"):
        TIERS.rates(-5.0)


# ---------------------------------------------------------------- spread and impact


def test_half_spread_cost_on_real_binance_quotes() -> None:
    # Given 2,000 real best bid/ask updates of Binance ETHUSDT
    quotes = _book_tickers("ticks/hftbacktest_spot_ethusdt_20240808.gz", 2000)
    # When the cost of crossing for 3 ETH is computed
    cost = half_spread_cost(quotes["bid"], quotes["ask"], 3.0)
    # Then it is half the quoted spread times 3, on the quotes' own index
    assert isinstance(cost, pd.Series)
    assert cost.index.equals(quotes.index)
    np.testing.assert_allclose(cost, (quotes["ask"] - quotes["bid"]) * 1.5, rtol=1e-12)
    assert (cost >= 0).all()
    # And a scalar call gives a float
    assert half_spread_cost(99.0, 101.0, 10.0) == pytest.approx(10.0)


def test_sqrt_impact_with_real_btc_volatility_and_volume() -> None:
    # Given BTC daily return volatility and ADV over 2018 from the real Coinbase daily bars
    daily = catalogue.coinbase_btcusd_daily().loc["2018"]
    sigma = float(daily["close"].pct_change().std(ddof=1))
    adv = float(daily["volume"].mean())
    sizes = pd.Series([0.001, 0.01, 0.04, 0.1, 0.4], index=list("abcde")) * adv
    # When the square-root impact of orders of 0.1% .. 40% of ADV is computed
    impact = sqrt_impact(sizes, adv, sigma)
    # Then it is sigma * sqrt(Q / ADV), keeps the index, and 4x the size costs 2x the impact
    np.testing.assert_allclose(impact, sigma * np.sqrt(sizes / adv), rtol=1e-14)
    assert impact.index.equals(sizes.index)
    assert impact["d"] / impact["b"] == pytest.approx(math.sqrt(10))
    assert impact["e"] / impact["d"] == pytest.approx(2.0)
    assert sqrt_impact(0.04 * adv, adv, sigma, c=0.5) == pytest.approx(0.5 * sigma * 0.2)


@given(q=st.floats(0.0, 1e9), adv=st.floats(1.0, 1e9), sigma=st.floats(0.0, 1.0), k=st.floats(1.0, 100.0))
def test_sqrt_impact_scales_as_the_square_root(q: float, adv: float, sigma: float, k: float) -> None:
    assert sqrt_impact(k * q, adv, sigma) == pytest.approx(math.sqrt(k) * sqrt_impact(q, adv, sigma), rel=1e-12)
    assert sqrt_impact(q, adv, sigma) >= 0


def test_spread_and_impact_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="crossed quote"):
        half_spread_cost(101.0, 100.0, 1.0)
    with pytest.raises(ValueError, match="quantity must be non-negative"):
        half_spread_cost(100.0, 101.0, -1.0)
    with pytest.raises(ValueError, match="adv must be positive"):
        sqrt_impact(1.0, 0.0, 0.02)
    with pytest.raises(ValueError, match="quantity must be non-negative"):
        sqrt_impact(-1.0, 10.0, 0.02)
    with pytest.raises(ValueError, match="NaN"):
        sqrt_impact(np.array([1.0, np.nan]), 10.0, 0.02)


# ---------------------------------------------------------------- pre-trade estimate


def test_estimate_cost_hand_checked_taker_buy() -> None:
    # Given a 10,000-share taker buy, quotes 99.90/100.10, ADV 1M, daily vol 2%, 20 bp taker fee
    est = estimate_cost(Order("buy", 10_000.0), Market(99.9, 100.1, 1e6, 0.02), TIERS)
    # Then spread = 0.10 x 10,000 = $1,000; impact = 0.02 x sqrt(1%) = 20 bp of $1M = $2,000;
    # fees = 20 bp of the executed $1,003,000 = $2,006; total $5,006 = 50.06 bp of the $1M at mid
    assert est.notional == pytest.approx(1_000_000.0)
    assert est.spread == pytest.approx(1_000.0)
    assert est.impact == pytest.approx(2_000.0)
    assert est.fees == pytest.approx(2_006.0)
    assert est.total == pytest.approx(5_006.0)
    assert (est.spread_bps, est.impact_bps, est.fees_bps, est.total_bps) == pytest.approx((10.0, 20.0, 20.06, 50.06))


def test_estimate_cost_maker_sell_at_the_touch_earns_spread_and_rebate() -> None:
    # Given a maker sell resting at the ask at the top fee tier (1 bp rebate)
    est = estimate_cost(
        Order("sell", 10_000.0, liquidity="maker"), Market(99.9, 100.1, 1e6, 0.02), TIERS, volume_30d=2e7
    )
    # Then spread = -(100.10 - 100.00) x 10,000 = -$1,000, impact still $2,000, and the rebate is
    # 1 bp of the executed (100 + 0.10 - 0.20) x 10,000 = $999,000, i.e. -$99.90
    assert est.spread == pytest.approx(-1_000.0)
    assert est.impact == pytest.approx(2_000.0)
    assert est.fees == pytest.approx(-99.9)
    assert est.total == pytest.approx(900.1)


def test_estimate_cost_on_a_real_btc_quote() -> None:
    # Given a real Binance BTCUSDT quote and 2019 Coinbase daily volatility and ADV
    quote = _book_tickers("ticks/hftbacktest_spot_btcusdt_20240808.gz", 1).iloc[0]
    daily = catalogue.coinbase_btcusd_daily().loc["2019"]
    market = Market(quote["bid"], quote["ask"], float(daily["volume"].mean()), float(daily["close"].pct_change().std()))
    order = Order("buy", 25.0)
    # When the cost is estimated at a flat 7.5 bp
    est = estimate_cost(order, market, 7.5)
    # Then each part is what its definition gives, the parts add up, and bps are of the mid notional
    mid = (quote["bid"] + quote["ask"]) / 2
    impact_frac = market.daily_vol * math.sqrt(25.0 / market.adv)
    assert est.spread == pytest.approx((quote["ask"] - quote["bid"]) / 2 * 25.0)
    assert est.impact == pytest.approx(impact_frac * mid * 25.0)
    assert est.fees == pytest.approx(7.5e-4 * (25.0 * mid + est.spread + est.impact))
    assert est.total == pytest.approx(est.fees + est.spread + est.impact)
    assert est.total_bps == pytest.approx(est.total / (25.0 * mid) * 1e4)


def test_estimate_cost_rejects_mislabelled_or_bad_orders() -> None:
    market = Market(99.9, 100.1, 1e6, 0.02)
    with pytest.raises(ValueError, match="does not cross"):
        estimate_cost(Order("buy", 1.0, limit_price=100.0), market, 10.0)
    with pytest.raises(ValueError, match="would cross"):
        estimate_cost(Order("sell", 1.0, limit_price=99.8, liquidity="maker"), market, 10.0)
    with pytest.raises(ValueError, match="quantity must be > 0"):
        Order("buy", -5.0)
    with pytest.raises(ValueError, match="side must be"):
        Order("hold", 5.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="crossed quote"):
        Market(100.1, 99.9, 1e6, 0.02)
    with pytest.raises(ValueError, match="adv must be > 0"):
        Market(99.9, 100.1, 0.0, 0.02)


# ---------------------------------------------------------------- implementation shortfall


def test_shortfall_of_a_partly_filled_buy_hand_checked() -> None:
    # Given a decision at 99.50, arrival at 100, 50 @ 100.10 and 30 @ 100.20 of 100 intended,
    # a final price of 101 and $5 of fees
    fills = (np.array([100.1, 100.2]), np.array([50.0, 30.0]))
    r = implementation_shortfall("buy", 100.0, fills, 100.0, final_price=101.0, fees=5.0, decision_price=99.5)
    # Then delay = 0.50 x 80 = 40, trading = 5,005 + 3,006 - 8,000 = 11, opportunity = 1.50 x 20 = 30
    assert (r.delay, r.trading, r.execution, r.opportunity, r.fees) == pytest.approx((40.0, 11.0, 51.0, 30.0, 5.0))
    assert r.total == pytest.approx(86.0)
    # And bps are of the paper portfolio 100 x 99.50
    assert r.total_bps == pytest.approx(86.0 / 9950.0 * 1e4)
    assert (r.filled_quantity, r.unfilled_quantity) == (80.0, 20.0)
    assert r.average_price == pytest.approx(8011.0 / 80.0)


def test_shortfall_of_sells_hand_checked() -> None:
    # Given a fully filled sell of 1,000 at arrival 50: 600 @ 49.90, 400 @ 49.80, $10 fees
    full = implementation_shortfall("sell", 50.0, np.array([[49.9, 600.0], [49.8, 400.0]]), 1000.0, fees=10.0)
    # Then trading = 50,000 - 29,940 - 19,920 = 140 (a cost), total 150 = 30 bp of $50,000
    assert full.trading == pytest.approx(140.0)
    assert full.opportunity == 0.0
    assert full.total == pytest.approx(150.0)
    assert full.total_bps == pytest.approx(30.0)
    # Given a sell of 100 at 20 with 60 @ 19.90 and a final price of 21
    part = implementation_shortfall(
        "sell", 20.0, pd.DataFrame({"price": [19.9], "qty": [60.0]}), 100.0, final_price=21.0
    )
    # Then trading costs 6, and the 40 unsold gained 40 (negative opportunity cost)
    assert part.trading == pytest.approx(6.0)
    assert part.opportunity == pytest.approx(-40.0)
    assert part.total == pytest.approx(-34.0)


@given(
    side=st.sampled_from(["buy", "sell"]),
    p0=st.floats(1.0, 1e5),
    moves=st.lists(st.floats(-0.05, 0.05), min_size=0, max_size=20),
    sizes=st.lists(st.floats(0.0, 100.0), min_size=20, max_size=20),
    extra=st.floats(0.0, 500.0),
    final=st.floats(-0.1, 0.1),
    fees=st.floats(-10.0, 100.0),
)
def test_shortfall_equals_paper_minus_real_portfolio(
    side: str, p0: float, moves: list[float], sizes: list[float], extra: float, final: float, fees: float
) -> None:
    # Given any fills, an intended quantity at least their sum and a final price
    prices = p0 * (1 + np.asarray(moves))
    qty = np.asarray(sizes[: len(moves)])
    intended = float(qty.sum()) + extra + 1.0
    pn = p0 * (1 + final)
    r = implementation_shortfall(side, p0, (prices, qty), intended, final_price=pn, fees=fees)
    s = 1.0 if side == "buy" else -1.0
    # Then IS is Perold's paper-minus-real difference: s (cash spent + value of what is missing - paper) + fees
    direct = s * (math.fsum(prices * qty) + pn * (intended - qty.sum()) - p0 * intended) + fees
    assert r.total == pytest.approx(direct, rel=1e-9, abs=1e-6 * p0)
    assert r.total == pytest.approx(r.execution + r.opportunity + r.fees, rel=1e-12, abs=1e-9)
    # And the mirror-image sell (prices reflected about the arrival) has the same shortfall
    mirror = implementation_shortfall(
        "sell" if side == "buy" else "buy", p0, (2 * p0 - prices, qty), intended, final_price=2 * p0 - pn, fees=fees
    )
    assert mirror.total == pytest.approx(r.total, rel=1e-9, abs=1e-6 * p0)


def test_shortfall_rejects_bad_input() -> None:
    fills = (np.array([10.0]), np.array([5.0]))
    with pytest.raises(ValueError, match="exceeds the intended"):
        implementation_shortfall("buy", 10.0, fills, 4.0)
    with pytest.raises(ValueError, match="final_price is required"):
        implementation_shortfall("buy", 10.0, fills, 10.0)
    with pytest.raises(ValueError, match="side must be"):
        implementation_shortfall("short", 10.0, fills, 10.0, final_price=10.0)
    with pytest.raises(ValueError, match="same length"):
        implementation_shortfall("buy", 10.0, (np.array([10.0, 11.0]), np.array([5.0])), 10.0, final_price=10.0)
    with pytest.raises(ValueError, match="non-negative"):
        implementation_shortfall("buy", 10.0, (np.array([10.0]), np.array([-5.0])), 10.0, final_price=10.0)


def test_costs_reexports_execution_and_routing() -> None:
    from quant import execution, routing

    assert costs.almgren_chriss is execution.almgren_chriss
    assert costs.twap is execution.twap
    assert costs.choose_venues is routing.choose_venues
    assert set(costs.__all__) >= {"almgren_chriss_frontier", "vwap", "pov", "round_schedule", "VenueLimits"}
