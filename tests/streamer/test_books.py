"""BookSync against an independent offline reconstruction of the real Binance captures."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from streamer.books import Applied, BookSync

from desk.local.catalogue import tick_lines

CAPTURES = {
    "ticks/hftbacktest_spot_btcusdt_20240808.gz": False,
    "ticks/hftbacktest_usdm_btcusdt_20240808.gz": True,
}


def read(name: str, limit: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    snapshot, diffs = None, []
    with tick_lines(name) as lines:
        for n, line in enumerate(lines):
            if n >= limit:
                break
            obj = json.loads(line.partition(" ")[2])
            if "lastUpdateId" in obj:
                snapshot = snapshot or obj
            elif obj["data"].get("e") == "depthUpdate":
                diffs.append(obj["data"])
    assert snapshot is not None
    return snapshot, diffs


def offline(snapshot: dict[str, Any], diffs: list[dict[str, Any]], depth: int) -> dict[int, tuple[list, list]]:
    """Top ``depth`` after each diff newer than the snapshot, by final update id (plain dicts, no rules)."""
    bids = {Decimal(p): Decimal(q) for p, q in snapshot["bids"]}
    asks = {Decimal(p): Decimal(q) for p, q in snapshot["asks"]}
    out = {}
    for d in diffs:
        if d["u"] <= snapshot["lastUpdateId"]:
            continue
        for side, rows in ((bids, d["b"]), (asks, d["a"])):
            for p, q in rows:
                side[Decimal(p)] = Decimal(q)
                if not Decimal(q):
                    del side[Decimal(p)]
        out[d["u"]] = (sorted(bids.items(), reverse=True)[:depth], sorted(asks.items())[:depth])
    return out


@pytest.mark.parametrize("name", list(CAPTURES))
def test_rebuilt_book_equals_offline_reconstruction_at_every_diff(name: str) -> None:
    # Given the capture's snapshot and its diffs, some of which arrive before the snapshot
    snapshot, diffs = read(name, 6000)
    expected = offline(snapshot, diffs, 20)
    sync = BookSync(futures=CAPTURES[name])
    early = [d for d in diffs if d["u"] <= snapshot["lastUpdateId"] + 50][:3]
    # When the early diffs are buffered, the snapshot lands, and the rest stream in
    for d in early:
        assert sync.on_diff(d) is Applied.BUFFERED
    assert sync.on_snapshot(snapshot) is Applied.APPLIED
    checked = 0
    for d in diffs[len(early) :]:
        result = sync.on_diff(d)
        # Then every applied diff leaves exactly the offline book
        if result is Applied.APPLIED:
            assert sync.book is not None
            assert sync.book.top(20) == expected[d["u"]]
            checked += 1
        else:
            assert result is Applied.DROPPED
    assert checked > 100


@pytest.mark.parametrize("name", list(CAPTURES))
def test_a_skipped_sequence_number_asks_for_a_resnapshot(name: str) -> None:
    # Given a book in sync with the capture
    snapshot, diffs = read(name, 3000)
    live = [d for d in diffs if d["u"] > snapshot["lastUpdateId"]]
    sync = BookSync(futures=CAPTURES[name])
    sync.on_snapshot(snapshot)
    for d in live[:10]:
        assert sync.on_diff(d) is Applied.APPLIED
    # When one diff never arrives
    result = sync.on_diff(live[11])
    # Then the book is discarded and a snapshot is needed; later diffs wait for it
    assert result is Applied.GAP
    assert sync.needs_snapshot and sync.resnapshots == 1
    assert sync.on_diff(live[12]) is Applied.BUFFERED
