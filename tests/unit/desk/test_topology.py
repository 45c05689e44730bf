"""The resource manifest: parsing, cross-reference checks and the derived values."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from desk.topology import MANIFEST, load, topology


def _raw() -> dict[str, object]:
    raw: dict[str, object] = json.loads(MANIFEST.read_text())
    return raw


def test_the_repository_manifest_parses_and_every_reference_resolves() -> None:
    # Given the repository's topology.json
    topo = topology()
    # Then every queue's consumer, rule's queue and schedule's function is declared
    assert all(q.consumer in topo.functions for q in topo.queues.values())
    assert all(r.queue in topo.queues for r in topo.rules.values())
    assert all(s.function in topo.functions for s in topo.schedules.values())


def test_visibility_timeout_is_the_factor_times_the_consumer_timeout() -> None:
    # Given the correlation queue, consumed by a 300 s function, and the factor 6
    topo = topology()
    # Then its visibility timeout is 1800 s, and every queue follows the same rule
    assert topo.visibility_timeout("correlation") == 1800
    for name, queue in topo.queues.items():
        expected = topo.defaults.visibility_timeout_factor * topo.functions[queue.consumer].timeout
        assert topo.visibility_timeout(name) == expected


def test_queues_for_follows_the_rules() -> None:
    topo = topology()
    # When asking where each event type goes
    # Then bars fan out to two queues, signals to one, and an unrouted type to none
    assert topo.queues_for("bars.ingested") == ["correlation", "regime"]
    assert topo.queues_for("signal.generated") == ["cost-optimiser"]
    assert topo.queues_for("regime.changed") == ["signals"]
    assert topo.queues_for("quote.stale") == []


def test_dlq_names_are_derived_from_the_queue() -> None:
    assert topology().dlq_name("risk") == "risk-dlq"


def test_function_module_is_the_dotted_handler_path() -> None:
    assert topology().functions["cost_optimiser"].module == "functions.cost_optimiser.handler"


@pytest.mark.parametrize(
    ("section", "name", "field", "value", "message"),
    [
        ("rules", "bars-to-regime", "queue", "nowhere", "targets unknown queue"),
        ("queues", "risk", "consumer", "ghost", "unknown consumer"),
        ("schedules", "ingest", "function", "ghost", "targets unknown function"),
    ],
)
def test_a_dangling_reference_is_rejected(
    tmp_path: object, section: str, name: str, field: str, value: str, message: str
) -> None:
    # Given a manifest with one reference pointing at nothing
    raw = _raw()
    section_map = raw[section]
    assert isinstance(section_map, dict)
    section_map[name][field] = value
    path = tmp_path / "topology.json"  # type: ignore[operator]
    path.write_text(json.dumps(raw))
    # When it is loaded, Then it fails naming the problem
    with pytest.raises(ValidationError, match=message):
        load(path)


def test_an_unknown_key_is_rejected(tmp_path: object) -> None:
    raw = _raw()
    raw["queus"] = {}
    path = tmp_path / "topology.json"  # type: ignore[operator]
    path.write_text(json.dumps(raw))
    with pytest.raises(ValidationError):
        load(path)
