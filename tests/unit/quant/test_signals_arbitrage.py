"""quant.signals.cross_exchange_opportunities: hand-made books and invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quant.signals import cross_exchange_opportunities

pytestmark = pytest.mark.unit


def _books() -> dict[str, tuple[list[list[float]], list[list[float]]]]:
    return {
        # venue A is cheap: its asks sit below B's bids
        "A": ([[99.0, 5.0], [98.0, 5.0]], [[100.0, 1.0], [100.5, 2.0], [102.0, 10.0]]),
        "B": ([[101.0, 1.5], [100.8, 1.0], [99.0, 10.0]], [[103.0, 5.0], [104.0, 5.0]]),
    }


def test_books_are_walked_level_by_level_until_the_edge_closes() -> None:
    # Given A's asks 100 x1, 100.5 x2 and B's bids 101 x1.5, 100.8 x1 (then 99), no fees
    table = cross_exchange_opportunities(_books(), fees={"A": 0.0, "B": 0.0})
    # Then one opportunity, buy A / sell B: 1@100 vs 101, 0.5@100.5 vs 101, 1@100.5 vs 100.8
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["buy_venue"], row["sell_venue"]) == ("A", "B")
    assert row["quantity"] == pytest.approx(2.5)
    cost = 1.0 * 100.0 + 1.5 * 100.5
    proceeds = 1.5 * 101.0 + 1.0 * 100.8
    assert row["buy_vwap"] == pytest.approx(cost / 2.5)
    assert row["sell_vwap"] == pytest.approx(proceeds / 2.5)
    assert row["net_profit"] == pytest.approx(proceeds - cost)
    assert row["gross_edge_bps"] == pytest.approx((proceeds / cost - 1.0) * 1e4)
    assert row["net_edge_bps"] == pytest.approx(row["gross_edge_bps"])


def test_fees_shrink_the_crossing_and_are_charged_on_both_legs() -> None:
    # Given 10 bps taker fees on each venue: 100.5 -> 100.6005 to buy, 100.8 -> 100.6992 to sell
    fees = {"A": 10.0, "B": 10.0}
    row = cross_exchange_opportunities(_books(), fees=fees).iloc[0]
    # The 100.5 ask still clears 101 after fees (100.6005 < 100.899) and 100.8 (100.6992), so the
    # quantity is unchanged; the net edge is the gross edge less both fees
    assert row["quantity"] == pytest.approx(2.5)
    cost = (1.0 * 100.0 + 1.5 * 100.5) * 1.001
    proceeds = (1.5 * 101.0 + 1.0 * 100.8) * 0.999
    assert row["net_profit"] == pytest.approx(proceeds - cost)
    assert row["net_edge_bps"] == pytest.approx((proceeds / cost - 1.0) * 1e4)
    # And with 30 bps only the first ask pays: 100 * 1.003 = 100.3 < 101 * 0.997 = 100.697, but
    # 100.5 * 1.003 = 100.8015 > 100.697
    tight = cross_exchange_opportunities(_books(), fees={"A": 30.0, "B": 30.0}).iloc[0]
    assert tight["quantity"] == pytest.approx(1.0)


def test_transfer_limit_and_minimum_edge_cap_the_trade() -> None:
    limited = cross_exchange_opportunities(_books(), fees={"A": 0.0, "B": 0.0}, transfer_limits={("A", "B"): 0.4})
    assert limited.iloc[0]["quantity"] == pytest.approx(0.4)
    # 100 -> 101 is 100 bps; 100.5 -> 101 is 49.8 bps: a 60 bps hurdle keeps only the first unit
    picky = cross_exchange_opportunities(_books(), fees={"A": 0.0, "B": 0.0}, min_edge_bps=60.0)
    assert picky.iloc[0]["quantity"] == pytest.approx(1.0)
    assert cross_exchange_opportunities(_books(), fees={"A": 0.0, "B": 0.0}, transfer_limits=0.0).empty


def test_no_opportunity_when_fees_exceed_the_cross() -> None:
    # Best cross is 100 -> 101 (100 bps): 50 bps a side eats it exactly, 60 bps more than eats it
    assert cross_exchange_opportunities(_books(), fees={"A": 60.0, "B": 60.0}).empty


def test_bad_books_and_missing_fees_are_rejected() -> None:
    with pytest.raises(ValueError, match="no taker fee"):
        cross_exchange_opportunities(_books(), fees={"A": 0.0})
    with pytest.raises(ValueError, match="positive prices"):
        cross_exchange_opportunities({"A": ([[-1.0, 1.0]], [[1.0, 1.0]])}, fees={"A": 0.0})
    with pytest.raises(ValueError, match="price, quantity"):
        cross_exchange_opportunities({"A": ([1.0, 2.0, 3.0], [[1.0, 1.0]])}, fees={"A": 0.0})


_level = st.tuples(st.floats(min_value=90.0, max_value=110.0), st.floats(min_value=0.0, max_value=5.0))
_side = st.lists(_level, min_size=0, max_size=6)
_venues = st.dictionaries(st.sampled_from(["A", "B", "C"]), st.tuples(_side, _side), min_size=2, max_size=3)


@given(_venues, st.floats(min_value=0.0, max_value=50.0))
def test_net_edge_never_exceeds_gross_and_every_row_pays(books: dict, fee_bps: float) -> None:
    fees = dict.fromkeys(books, fee_bps)
    table = cross_exchange_opportunities(books, fees=fees)
    assert (table["net_edge_bps"] <= table["gross_edge_bps"] + 1e-9).all()
    assert (table["net_profit"] > 0.0).all()
    assert (table["buy_venue"] != table["sell_venue"]).all()
    # Quantity never exceeds the depth of either side walked
    for _, row in table.iterrows():
        asks = np.asarray(books[row["buy_venue"]][1], dtype=float).reshape(-1, 2)
        bids = np.asarray(books[row["sell_venue"]][0], dtype=float).reshape(-1, 2)
        assert row["quantity"] <= min(asks[:, 1].sum(), bids[:, 1].sum()) + 1e-9


@given(_venues, st.floats(min_value=0.0, max_value=50.0))
def test_no_row_when_fees_exceed_every_top_of_book_cross(books: dict, extra_bps: float) -> None:
    # Given fees set above the best possible cross between any two venues
    best_bid = max((max((p for p, _ in b), default=0.0) for b, _ in books.values()), default=0.0)
    best_ask = min((min((p for p, _ in a), default=np.inf) for _, a in books.values()), default=np.inf)
    cross_bps = max(best_bid / best_ask - 1.0, 0.0) * 1e4 if np.isfinite(best_ask) else 0.0
    fees = dict.fromkeys(books, cross_bps / 2.0 + extra_bps + 1.0)
    # Then nothing is reported
    assert cross_exchange_opportunities(books, fees=fees).empty
