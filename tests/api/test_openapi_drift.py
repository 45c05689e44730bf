"""The committed OpenAPI document is the one the code generates."""

from __future__ import annotations

import json

from desk.api.openapi import DEFAULT_PATH, render


def test_docs_openapi_json_matches_the_code() -> None:
    # Given the committed document; When the code's document is generated
    committed = DEFAULT_PATH.read_text(encoding="utf-8")
    generated = render()
    # Then they are identical (regenerate with `make openapi` / `python -m desk.api.openapi`)
    assert json.loads(committed) == json.loads(generated), "docs/openapi.json drifted: run `make openapi`"
    assert committed == generated


def test_the_document_covers_every_route_and_protects_all_but_health() -> None:
    document = json.loads(render())
    operations = {(m.upper(), p): op for p, item in document["paths"].items() for m, op in item.items()}
    assert len(operations) == 31
    assert document["security"] == [{"bearer": []}]
    assert operations["GET", "/v1/health"]["security"] == [{}]
    assert all("security" not in op for key, op in operations.items() if key != ("GET", "/v1/health"))
