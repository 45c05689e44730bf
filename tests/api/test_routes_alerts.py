"""Alert rules: stored in PostgreSQL (``alert_rules``), created once per (portfolio, name), listed by name."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from desk.store import LambdaConnection
from tests.api.conftest import Api, Desk, Reply

RULE = {"name": "var-limit", "metric": "var", "threshold": 0.05}


def _rows(desk: Desk) -> list[tuple[Any, ...]]:
    return desk.store.db.run(
        lambda conn: conn.execute(
            "SELECT rule_id, portfolio, name, metric, threshold, severity, latch_kill_switch, created_by"
            " FROM alert_rules ORDER BY portfolio, name"
        ).fetchall()
    )


def test_a_rule_is_a_row_and_a_repeat_answers_the_stored_rule(api: Api, desk: Desk) -> None:
    # When a rule is posted twice, the second time by someone else
    first = api.post("/v1/risk/alert", RULE)
    again = Api(subject="someone-else").post("/v1/risk/alert", RULE)
    # Then one row holds it, and both answers are that row (the first author and time)
    assert first.status == 200, first.body
    assert again.status == 200 and again.body == first.body
    assert first.body["rule_id"] == "desk:var-limit" and first.body["created_by"] == "tester"
    assert first.body["created_at"] == desk.clock.now().isoformat().replace("+00:00", "Z")
    assert _rows(desk) == [("desk:var-limit", "desk", "var-limit", "var", 0.05, "warning", False, "tester")]


def test_the_same_name_with_other_settings_is_409_and_changes_nothing(api: Api, desk: Desk) -> None:
    assert api.post("/v1/risk/alert", RULE).status == 200
    for change in ({"threshold": 0.06}, {"severity": "critical"}, {"latch_kill_switch": True}, {"metric": "cvar"}):
        reply = api.post("/v1/risk/alert", {**RULE, **change})
        assert reply.status == 409 and reply.body["code"] == "conflict", (change, reply.body)
    # The same name in another portfolio is another rule
    other = api.post("/v1/risk/alert", {**RULE, "portfolio": "crypto", "threshold": 0.06})
    assert other.status == 200 and other.body["rule_id"] == "crypto:var-limit"
    assert [(r[0], r[4]) for r in _rows(desk)] == [("crypto:var-limit", 0.06), ("desk:var-limit", 0.05)]


def test_creating_a_rule_needs_the_trade_scope(desk: Desk) -> None:
    reply = Api(scopes=("desk:read",)).post("/v1/risk/alert", RULE)
    assert reply.status == 403 and _rows(desk) == []


def test_rules_are_listed_by_name_a_page_at_a_time(api: Api, desk: Desk) -> None:
    names = ["cvar-limit", "drawdown.max", "gross", "net", "var-limit"]
    for name in reversed(names):
        assert api.post("/v1/risk/alert", {**RULE, "name": name}).status == 200
    assert api.post("/v1/risk/alert", {**RULE, "portfolio": "crypto"}).status == 200
    pages, cursor = [], None
    while True:
        reply = api.get("/v1/risk/alert?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert reply.status == 200 and reply.body["portfolio"] == "desk", reply.body
        pages.append([r["name"] for r in reply.body["rules"]])
        cursor = reply.body["next_cursor"]
        if cursor is None:
            break
    assert pages == [["cvar-limit", "drawdown.max"], ["gross", "net"], ["var-limit"]]
    crypto = api.get("/v1/risk/alert?portfolio=crypto")
    assert crypto.status == 200 and [r["rule_id"] for r in crypto.body["rules"]] == ["crypto:var-limit"]
    assert api.get("/v1/risk/alert?portfolio=nobody").body == {"portfolio": "nobody", "rules": [], "next_cursor": None}
    assert api.get("/v1/risk/alert?cursor=a%20b").status == 422


def _post_while_another_insert_is_open(desk: Desk, pg_url: str, threshold: float) -> Reply:
    """POST the rule while another transaction has inserted (portfolio, name) but not committed yet."""
    replies: list[Reply] = []
    with psycopg.connect(pg_url) as other:
        other.execute(
            "INSERT INTO alert_rules (portfolio, name, metric, threshold, severity, latch_kill_switch, created_at,"
            " created_by) VALUES ('desk', 'var-limit', 'var', %s, 'warning', false, %s, 'racer')",
            (threshold, desk.clock.now()),
        )
        worker = threading.Thread(target=lambda: replies.append(Api().post("/v1/risk/alert", RULE)))
        worker.start()
        deadline = time.monotonic() + 10
        assert isinstance(desk.store.db, LambdaConnection)
        while not _waiting_on_a_lock(pg_url, desk.store.db.backend_pid):
            assert time.monotonic() < deadline, "the API's insert never waited for the other transaction"
            time.sleep(0.01)
        other.commit()
    worker.join(10)
    assert len(replies) == 1
    return replies[0]


def _waiting_on_a_lock(pg_url: str, pid: int | None) -> bool:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return row is not None and row[0] == "Lock"


@pytest.mark.parametrize(("threshold", "status"), [(0.05, 200), (0.06, 409)])
def test_a_race_is_decided_by_the_first_commit(
    api: Api, desk: Desk, pg_url: str, threshold: float, status: int
) -> None:
    # Given the API's connection is open (its backend pid is what we watch)
    assert api.get("/v1/risk/alert").status == 200
    # When another transaction inserts the same rule first, then commits while the API waits on it
    reply = _post_while_another_insert_is_open(desk, pg_url, threshold)
    # Then the API answers from the winner's row: the same rule is that rule, another is a conflict
    assert reply.status == status, reply.body
    if status == 200:
        assert reply.body["created_by"] == "racer"
    assert [(r[0], r[4], r[7]) for r in _rows(desk)] == [("desk:var-limit", threshold, "racer")]
