"""quant.routing.choose_venues: optimal split against brute force, an exact MILP and real Binance books."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from desk.local import catalogue
from quant.costs import FeeSchedule, FeeTier
from quant.routing import VenueLimits, choose_venues


def _snapshot(name: str) -> dict[str, np.ndarray]:
    """The REST depth snapshot (1,000 levels a side) at the start of a real Binance capture."""
    with catalogue.tick_lines(name) as fh:
        for line in fh:
            payload = line.partition(" ")[2]
            if '"lastUpdateId"' in payload:
                msg = json.loads(payload)
                return {side: np.asarray(msg[side], dtype=float) for side in ("bids", "asks")}
    raise AssertionError(f"{name} has no depth snapshot")


def _walk_cost(prices: np.ndarray, sizes: np.ndarray, q: float, sign: float) -> float:
    """Cash of sweeping q through levels best first (buy: paid, sell: minus received), fee-free."""
    order = np.argsort(prices * sign, kind="stable")
    p, s = prices[order], sizes[order]
    take = np.clip(q - (np.cumsum(s) - s), 0, s)
    return float(sign * np.dot(p, take))


# ---------------------------------------------------------------- hand-checked


def test_hand_checked_split_with_fees() -> None:
    # Given venue A asks 100 x 5, 101 x 5 with a 10 bp fee and venue B asks 100.05 x 3, 102 x 10, no fee
    books = {"A": ([101.0, 100.0], [5.0, 5.0]), "B": np.array([[100.05, 3.0], [102.0, 10.0]])}
    # When buying 10
    r = choose_venues("buy", 10.0, books, {"A": 10.0, "B": 0.0})
    # Then fee-adjusted the order is B 100.05, A 100.10, A 101.101, B 102: B 3, A 5 + 2
    assert r.allocations.loc["A", "quantity"] == pytest.approx(7.0)
    assert r.allocations.loc["B", "quantity"] == pytest.approx(3.0)
    assert r.allocations.loc["A", "worst_price"] == 101.0
    assert r.allocations.loc["A", "average_price"] == pytest.approx((500.0 + 202.0) / 7)
    assert r.fees == pytest.approx(0.702)
    assert r.total == pytest.approx(702.0 + 0.702 + 300.15)
    assert (r.filled, r.unfilled) == (10.0, 0.0)


def test_min_notional_and_limits_change_the_split() -> None:
    books = {"A": ([100.0, 101.0], [5.0, 5.0]), "B": ([100.5, 102.0], [3.0, 10.0])}
    fees = {"A": 10.0, "B": 0.0}
    # Given B needs at least $500 per order: sending B only its 3 cheap units is not allowed
    r = choose_venues("buy", 10.0, books, fees, {"B": VenueLimits(min_notional=500.0)})
    b = r.allocations.loc["B"]
    # Then B gets exactly its minimum ($500: 3 @ 100.5 + 198.5/102 @ 102) because that beats A only
    assert b["notional"] == pytest.approx(500.0)
    assert b["quantity"] == pytest.approx(3 + 198.5 / 102)
    assert r.total < 500.5 + 505.505
    # Given B's minimum ($300) can only be met by sweeping into its dear 105 level
    r = choose_venues(
        "buy",
        3.0,
        {"A": ([100.0], [10.0]), "B": ([99.0, 105.0], [1.0, 10.0])},
        {"A": 0.0, "B": 0.0},
        {"B": VenueLimits(min_notional=300.0)},
    )
    # Then B is left out: 3 @ 100 = $300 beats $300 at B for 2.914 plus 0.086 @ 100 at A
    assert r.allocations.loc["B", "quantity"] == 0.0
    assert r.total == pytest.approx(300.0)
    # Given A may send 4 at most and B has $200 of cash
    r = choose_venues(
        "buy", 10.0, books, fees, {"A": VenueLimits(max_quantity=4), "B": VenueLimits(available_balance=200)}
    )
    # Then A sends 4, B as much as $200 buys (199/100.5 ... 1.99), and the rest is unfillable
    assert r.allocations.loc["A", "quantity"] == pytest.approx(4.0)
    assert r.allocations.loc["B", "quantity"] == pytest.approx(200.0 / 100.5)
    assert r.unfilled == pytest.approx(10.0 - 4.0 - 200.0 / 100.5)


def test_sell_routes_to_the_best_fee_adjusted_bid() -> None:
    # Given bids of 100 at A (30 bp fee) and 99.9 at B (0 bp)
    books = {"A": ([100.0, 99.0], [1.0, 1.0]), "B": ([99.9, 99.5], [1.0, 1.0])}
    tiers = FeeSchedule((FeeTier(0.0, 0.0, 30.0), FeeTier(1e6, 0.0, 5.0)))
    # When selling 1 at tier 0: A nets 99.70 < B's 99.90, so B wins
    low = choose_venues("sell", 1.0, books, {"A": tiers.rates(0)[1], "B": 0.0})
    assert low.allocations.loc["B", "quantity"] == pytest.approx(1.0)
    # And at the 5 bp tier A nets 99.95 and wins
    high = choose_venues("sell", 1.0, books, {"A": tiers.rates(2e6)[1], "B": 0.0})
    assert high.allocations.loc["A", "quantity"] == pytest.approx(1.0)
    assert high.total == pytest.approx(100.0 * (1 - 5e-4))


# ---------------------------------------------------------------- optimality


@st.composite
def _markets(draw: st.DrawFn, integer: bool) -> tuple[dict, dict, dict, float]:
    n_venues = draw(st.integers(1, 3) if integer else st.integers(2, 3))
    books, fees, limits = {}, {}, {}
    for v in range(n_venues):
        n_levels = draw(st.integers(1, 3))
        if integer:
            prices = draw(st.lists(st.integers(95, 105), min_size=n_levels, max_size=n_levels, unique=True))
            sizes = draw(st.lists(st.integers(1, 4), min_size=n_levels, max_size=n_levels))
        else:
            prices = draw(st.lists(st.integers(9500, 10500), min_size=n_levels, max_size=n_levels, unique=True))
            prices = [p / 100 for p in prices]
            sizes = [s / 4 for s in draw(st.lists(st.integers(1, 20), min_size=n_levels, max_size=n_levels))]
        books[f"v{v}"] = (np.asarray(prices, float), np.asarray(sizes, float))
        fees[f"v{v}"] = float(draw(st.sampled_from([0.0, 2.5, 10.0, 40.0])))
        if integer:
            cap = draw(st.one_of(st.none(), st.integers(0, 6)))
            limits[f"v{v}"] = VenueLimits(max_quantity=math.inf if cap is None else float(cap))
        else:
            limits[f"v{v}"] = VenueLimits(
                min_notional=float(draw(st.sampled_from([0.0, 0.0, 150.0, 400.0]))),
                available_balance=float(draw(st.sampled_from([math.inf, 300.0, 800.0]))),
                max_quantity=float(draw(st.sampled_from([math.inf, 2.0, 6.0]))),
            )
    quantity = float(draw(st.integers(1, 12))) if integer else draw(st.integers(1, 40)) / 4
    return books, fees, limits, quantity


@given(market=_markets(integer=True), side=st.sampled_from(["buy", "sell"]))
def test_greedy_matches_brute_force_over_integer_allocations(market: tuple, side: str) -> None:
    # Given integer sizes, caps and quantity (so an optimal split is integral: the LP is totally unimodular)
    books, fees, limits, quantity = market
    sign = 1.0 if side == "buy" else -1.0
    r = choose_venues(side, quantity, books, fees, limits)
    names = list(books)
    caps = [int(min(books[n][1].sum(), limits[n].max_quantity)) for n in names]
    fill = min(quantity, sum(caps))
    # When every integer allocation of the fillable quantity is enumerated
    best = math.inf
    for alloc in itertools.product(*(range(c + 1) for c in caps)):
        if sum(alloc) != fill:
            continue
        cost = sum(
            _walk_cost(books[n][0] * (1 + sign * fees[n] / 1e4), books[n][1], q, sign)
            for n, q in zip(names, alloc, strict=True)
        )
        best = min(best, cost)
    # Then the router fills as much and pays no more than the best allocation
    assert r.filled == pytest.approx(fill, abs=1e-9)
    assert r.unfilled == pytest.approx(quantity - fill, abs=1e-9)
    assert sign * r.total == pytest.approx(best, rel=1e-12, abs=1e-9)


def _milp_reference(books: dict, fees: dict, limits: dict, quantity: float, sign: float) -> tuple[float, float]:
    """Exact sweep model as a MILP: (largest fill, least signed cash for it)."""
    names = list(books)
    cols: list[tuple[int, float, float, float]] = []  # (venue, price, size, unit cost)
    for v, n in enumerate(names):
        p, s = books[n]
        order = np.argsort(p * sign, kind="stable")
        cols += [(v, float(p[i]), float(s[i]), sign * float(p[i]) * (1 + sign * fees[n] / 1e4)) for i in order]
    nq, nv = len(cols), len(names)
    ny = nq  # y_i = 1 when level i is used up (allows the next level of the same venue)
    nvar = nq + ny + nv  # quantities, level-full flags, venue-used flags
    rows, lo, hi = [], [], []

    def row(coef: dict[int, float], lower: float, upper: float) -> None:
        a = np.zeros(nvar)
        for k, c in coef.items():
            a[k] += c
        rows.append(a)
        lo.append(lower)
        hi.append(upper)

    for v, n in enumerate(names):
        idx = [i for i, c in enumerate(cols) if c[0] == v]
        size = sum(cols[i][2] for i in idx)
        lim = limits.get(n, VenueLimits())
        z = nq + ny + v
        row({**{i: 1.0 for i in idx}, z: -size}, -math.inf, 0.0)  # only a used venue trades
        row({**{i: cols[i][1] for i in idx}, z: -lim.min_notional}, 0.0, math.inf)  # minimum notional
        row({i: 1.0 for i in idx}, 0.0, lim.max_quantity)
        if sign > 0:
            row({i: cols[i][3] for i in idx}, -math.inf, lim.available_balance)
        else:
            row({i: 1.0 for i in idx}, 0.0, lim.available_balance)
        for a, b in itertools.pairwise(idx):
            row({a: 1.0, nq + a: -cols[a][2]}, 0.0, math.inf)  # y_a = 1 -> level a full
            row({b: 1.0, nq + a: -cols[b][2]}, -math.inf, 0.0)  # level b only if y_a = 1
    integrality = np.r_[np.zeros(nq), np.ones(ny + nv)]
    bounds = Bounds(np.zeros(nvar), np.r_[[c[2] for c in cols], np.ones(ny + nv)])
    total = np.r_[np.ones(nq), np.zeros(ny + nv)]
    cons = [LinearConstraint(np.array(rows), lo, hi), LinearConstraint(total, 0.0, quantity)]
    first = milp(-total, constraints=cons, integrality=integrality, bounds=bounds)
    assert first.success
    fill = -first.fun
    cons[1] = LinearConstraint(total, max(fill - 1e-9, 0.0), quantity)
    cost = np.r_[[c[3] for c in cols], np.zeros(ny + nv)]
    second = milp(cost, constraints=cons, integrality=integrality, bounds=bounds, options={"mip_rel_gap": 1e-12})
    assert second.success
    return fill, float(second.fun)


@given(market=_markets(integer=False), side=st.sampled_from(["buy", "sell"]))
def test_routing_with_minimums_and_balances_matches_an_exact_milp(market: tuple, side: str) -> None:
    # Given books, fees, minimum notionals, balances and size caps
    books, fees, limits, quantity = market
    sign = 1.0 if side == "buy" else -1.0
    r = choose_venues(side, quantity, books, fees, limits)
    # When the same sweep problem is solved exactly as a MILP (HiGHS)
    fill, cost = _milp_reference(books, fees, limits, quantity, sign)
    # Then the router fills as much, at the same cash to solver tolerance
    assert r.filled == pytest.approx(fill, abs=1e-6)
    assert sign * r.total == pytest.approx(cost, rel=1e-7, abs=1e-5)
    # And every venue respects its limits
    for name, row in r.allocations.iterrows():
        lim = limits[name]
        assert row["quantity"] <= lim.max_quantity * (1 + 1e-12)
        assert row["quantity"] == 0 or row["notional"] >= lim.min_notional * (1 - 1e-12)
        used = row["notional"] + row["fees"] if side == "buy" else row["quantity"]
        assert used <= lim.available_balance * (1 + 1e-12)


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_real_binance_spot_and_perp_books_match_a_linear_program(side: str) -> None:
    # Given the real BTCUSDT spot and USD-M perpetual depth snapshots (1,000 levels a side each)
    spot = _snapshot("ticks/hftbacktest_spot_btcusdt_20240808.gz")
    perp = _snapshot("ticks/hftbacktest_usdm_btcusdt_20240808.gz")
    key = "asks" if side == "buy" else "bids"
    books = {"spot": spot[key], "perp": perp[key]}
    fees = {"spot": 10.0, "perp": 5.0}
    limits = {"spot": VenueLimits(max_quantity=30.0), "perp": VenueLimits(available_balance=2_000_000.0)}
    sign = 1.0 if side == "buy" else -1.0
    if side == "sell":
        limits["perp"] = VenueLimits(available_balance=40.0)
    # When 60 BTC is routed
    r = choose_venues(side, 60.0, books, fees, limits)
    # Then the cash equals the optimum of the linear program over every level (HiGHS)
    p = np.r_[books["spot"][:, 0], books["perp"][:, 0]]
    s = np.r_[books["spot"][:, 1], books["perp"][:, 1]]
    venue = np.r_[np.zeros(len(books["spot"])), np.ones(len(books["perp"]))]
    c = sign * p * (1 + sign * np.where(venue == 0, 10.0, 5.0) / 1e4)
    a_ub = [np.where(venue == 0, 1.0, 0.0)]
    b_ub = [30.0]
    if side == "buy":
        a_ub.append(np.where(venue == 1, c, 0.0))
        b_ub.append(2_000_000.0)
    else:
        a_ub.append(np.where(venue == 1, 1.0, 0.0))
        b_ub.append(40.0)
    lp = linprog(c, A_ub=np.array(a_ub), b_ub=b_ub, A_eq=np.ones((1, p.size)), b_eq=[60.0], bounds=np.c_[0 * s, s])
    assert lp.status == 0
    assert r.filled == pytest.approx(60.0)
    assert sign * r.total == pytest.approx(lp.fun, rel=1e-10)
    # And the spot cap binds while the remainder goes to the perpetual
    assert r.allocations.loc["spot", "quantity"] <= 30.0 + 1e-12
    assert r.allocations["quantity"].sum() == pytest.approx(60.0)


def test_unfillable_remainder_is_reported() -> None:
    # Given 3 units of liquidity in total
    r = choose_venues("buy", 10.0, {"A": ([1.0], [1.0]), "B": ([2.0], [2.0])}, {"A": 0.0, "B": 0.0})
    assert (r.filled, r.unfilled) == (3.0, 7.0)
    assert r.average_price == pytest.approx(5.0 / 3.0)


def test_a_minimum_larger_than_the_order_sends_nothing_there() -> None:
    r = choose_venues("buy", 1.0, {"A": ([100.0], [10.0])}, {"A": 0.0}, {"A": VenueLimits(min_notional=1000.0)})
    assert r.filled == 0.0
    assert r.unfilled == 1.0
    assert math.isnan(r.allocations.loc["A", "average_price"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"side": "short"}, "side must be"),
        ({"quantity": -1.0}, "quantity must be > 0"),
        ({"books": {}}, "books is empty"),
        ({"fees": {}}, "no taker fee"),
        ({"limits": {"Z": VenueLimits()}}, "without a book"),
        ({"books": {"A": ([100.0], [-1.0])}}, "negative size"),
        ({"books": {"A": ([100.0, 101.0], [1.0])}}, "same length"),
        ({"books": {"A": ([0.0], [1.0])}}, "non-positive price"),
    ],
)
def test_choose_venues_rejects_bad_input(kwargs: dict, match: str) -> None:
    args = {"side": "buy", "quantity": 1.0, "books": {"A": ([100.0], [1.0])}, "fees": {"A": 1.0}} | kwargs
    with pytest.raises(ValueError, match=match):
        choose_venues(**args)


def test_venue_limits_reject_negative_values() -> None:
    with pytest.raises(ValueError, match="min_notional must be >= 0"):
        VenueLimits(min_notional=-1.0)
