"""Write the OpenAPI document generated from the code: ``python -m desk.api.openapi [PATH]``.

The committed copy is ``docs/openapi.json``; ``tests/api/test_openapi_drift.py`` fails when the
code and the copy disagree, so regenerate with this module after changing a route or a model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DEFAULT_PATH = Path(__file__).resolve().parents[4] / "docs" / "openapi.json"


def render() -> str:
    """The document, pretty-printed with sorted keys (stable diffs), ending in a newline."""
    from desk.api.app import openapi_document

    return json.dumps(json.loads(openapi_document()), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else DEFAULT_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {target}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
