"""desk.store.validation: bad bars are rejected with a reason, good ones pass in input order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from desk.schemas.market import Bar
from desk.store.validation import RejectReason, validate_bars

T0 = datetime(2024, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=1)


def _bar(hour: int = 0, **changes: Any) -> Bar:
    fields: dict[str, Any] = {
        "venue": "binance",
        "symbol": "BTC/USDT",
        "timeframe": "1h",
        "ts": T0 + timedelta(hours=hour),
        "open": Decimal("100"),
        "high": Decimal("110"),
        "low": Decimal("90"),
        "close": Decimal("105"),
        "volume": Decimal("3.5"),
    }
    fields.update(changes)
    # model_construct: the pydantic model would refuse these bars; the store must refuse them too.
    return Bar.model_construct(**fields)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"high": Decimal("80")}, RejectReason.HIGH_BELOW_LOW),
        ({"open": Decimal("111")}, RejectReason.OPEN_OUTSIDE_RANGE),
        ({"open": Decimal("89")}, RejectReason.OPEN_OUTSIDE_RANGE),
        ({"close": Decimal("120")}, RejectReason.CLOSE_OUTSIDE_RANGE),
        ({"volume": Decimal("-1")}, RejectReason.NEGATIVE_VOLUME),
        ({"close": Decimal("NaN")}, RejectReason.NON_FINITE),
        ({"high": Decimal("Infinity")}, RejectReason.NON_FINITE),
        ({"volume": float("nan")}, RejectReason.NON_FINITE),
        ({"low": Decimal("0"), "open": Decimal("0")}, RejectReason.NON_POSITIVE_PRICE),
        ({"ts": NOW + timedelta(seconds=1)}, RejectReason.FUTURE_TIMESTAMP),
        ({"ts": datetime(2024, 1, 1)}, RejectReason.NAIVE_TIMESTAMP),  # deliberately naive
    ],
)
def test_each_bad_bar_is_rejected_with_its_reason(changes: dict[str, Any], reason: RejectReason) -> None:
    # Given a good bar before and after one bad bar
    batch = [_bar(0), _bar(1, **changes), _bar(2)]
    # When the batch is validated
    good, rejected = validate_bars(batch, NOW)
    # Then only the bad bar is rejected, with its reason, and the good ones keep their order
    assert good == [batch[0], batch[2]]
    assert rejected == [(batch[1], reason)]


def test_a_bar_at_now_is_accepted() -> None:
    # Given a bar opening exactly at "now"
    bar = _bar(24)
    # When validated, Then it is not in the future
    assert validate_bars([bar], NOW) == ([bar], [])


def test_out_of_order_and_duplicate_timestamps_within_a_series() -> None:
    # Given a series that repeats a time and then steps back
    batch = [_bar(0), _bar(2), _bar(2, close=Decimal("106")), _bar(1), _bar(3)]
    # When validated
    good, rejected = validate_bars(batch, NOW)
    # Then the repeat and the step back are rejected against the last accepted bar
    assert good == [batch[0], batch[1], batch[4]]
    assert [(r.bar, r.reason) for r in rejected] == [
        (batch[2], RejectReason.DUPLICATE_TIMESTAMP),
        (batch[3], RejectReason.OUT_OF_ORDER),
    ]


def test_ordering_is_per_series_and_ignores_rejected_bars() -> None:
    # Given two interleaved series and a bad bar that would otherwise advance the first series
    other = {"symbol": "ETH/USDT"}
    batch = [_bar(5), _bar(1, **other), _bar(9, high=Decimal("1")), _bar(6), _bar(2, **other)]
    # When validated
    good, rejected = validate_bars(batch, NOW)
    # Then each series is checked on its own, and the bad bar does not move the ordering mark
    assert good == [batch[0], batch[1], batch[3], batch[4]]
    assert [r.reason for r in rejected] == [RejectReason.HIGH_BELOW_LOW]


def test_now_must_be_timezone_aware() -> None:
    # Given a naive clock reading, When validating, Then it is refused rather than compared wrongly
    with pytest.raises(ValueError, match="timezone-aware"):
        validate_bars([_bar(0)], datetime(2024, 1, 2))
