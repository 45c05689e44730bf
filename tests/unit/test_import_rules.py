"""The architecture's import rules, checked on the source tree (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUANT = ROOT / "layers" / "quant" / "quant"
QUANT_ALLOWED = {"numpy", "pandas", "scipy", "numba", "quant", "__future__"}
STDLIB_FORBIDDEN_IN_QUANT = {
    "os",
    "io",
    "socket",
    "urllib",
    "http",
    "subprocess",
    "time",
    "datetime",
    "pathlib",
    "shutil",
    "tempfile",
    "requests",
    "boto3",
    "botocore",
}


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], node.lineno))
    return found


def test_quant_imports_only_numeric_libraries_and_pure_stdlib() -> None:
    # Given every module of the quant layer
    offences = []
    for path in QUANT.rglob("*.py"):
        for top, line in _imports(path):
            # Then each import is numpy/pandas/scipy/numba/quant or a pure standard-library module
            is_stdlib = top in sys.stdlib_module_names
            if top in QUANT_ALLOWED or (is_stdlib and top not in STDLIB_FORBIDDEN_IN_QUANT):
                continue
            offences.append(f"{path.relative_to(ROOT)}:{line} imports {top}")
    assert offences == []


def test_quant_reads_no_environment_or_clock() -> None:
    offences = []
    for path in QUANT.rglob("*.py"):
        text = path.read_text()
        for needle in ("os.environ", "getenv", "datetime.now", "time.time(", "open("):
            if needle in text:
                offences.append(f"{path.relative_to(ROOT)} uses {needle}")
    assert offences == []


DESK = ROOT / "layers" / "desk" / "desk"
IO_LIBRARIES = {
    "boto3",
    "botocore",
    "psycopg",
    "psycopg_pool",
    "redis",
    "ccxt",
    "alpaca",
    "aiohttp",
    "requests",
    "yoyo",
}


def _desk_imports(package: str) -> list[tuple[Path, str, int]]:
    """(file, imported module, line) for every absolute import in ``desk.<package>``, dotted names kept."""
    found = []
    for path in (DESK / package).rglob("*.py") if (DESK / package).is_dir() else [DESK / f"{package}.py"]:
        if not path.exists():
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.extend((path, alias.name, node.lineno) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append((path, node.module, node.lineno))
    return found


def test_desk_domain_is_pure() -> None:
    # Given the domain package, Then it imports only the standard library (no I/O), pydantic and itself
    offences = []
    for path, module, line in _desk_imports("domain"):
        top = module.split(".")[0]
        # datetime is allowed for its types; reading the clock is checked below
        pure_stdlib = top in sys.stdlib_module_names and top not in STDLIB_FORBIDDEN_IN_QUANT - {"datetime"}
        if pure_stdlib or top == "pydantic" or module.startswith("desk.domain") or top == "__future__":
            continue
        offences.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    for path in (DESK / "domain").rglob("*.py"):
        text = path.read_text()
        offences.extend(
            f"{path.relative_to(ROOT)} reads the clock" for clock in (".now(", "utcnow(", "time.time(") if clock in text
        )
    assert offences == []


def test_schemas_and_events_see_only_the_domain() -> None:
    offences = []
    for package in ("schemas", "events"):
        for path, module, line in _desk_imports(package):
            top = module.split(".")[0]
            if top == "desk" and not module.startswith(("desk.domain", "desk.schemas", "desk.events", "desk.ports")):
                offences.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
            if top in IO_LIBRARIES or top == "quant":
                offences.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert offences == []


def test_usecases_never_touch_concrete_adapters() -> None:
    # Use cases receive their ports; handlers build the concrete stores and venues (ARCHITECTURE.md).
    concrete = ("desk.store", "desk.cache", "desk.venues", "desk.aws", "desk.local")
    offences = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path, module, line in _desk_imports("usecases")
        if module.startswith(concrete) or module.split(".")[0] in IO_LIBRARIES
    ]
    assert offences == []


def test_infra_refers_to_runtime_code_by_path_only() -> None:
    infra = ROOT / "infra"
    offences = []
    for path in infra.rglob("*.py") if infra.exists() else []:
        for top, line in _imports(path):
            if top in {"desk", "quant", "functions"}:
                offences.append(f"{path.relative_to(ROOT)}:{line} imports {top}")
    assert offences == []


def test_functions_never_import_each_other() -> None:
    functions = ROOT / "functions"
    names = {p.name for p in functions.iterdir() if p.is_dir()} if functions.exists() else set()
    offences = []
    for path in functions.rglob("*.py") if functions.exists() else []:
        for top, line in _imports(path):
            if top in names or top == "functions":
                offences.append(f"{path.relative_to(ROOT)}:{line} imports {top}")
    assert offences == []


def test_rule_checker_detects_a_forbidden_import(tmp_path: Path) -> None:
    # Given a module that imports boto3, When parsed, Then the checker sees it
    mod = tmp_path / "bad.py"
    mod.write_text("import boto3\nfrom os import environ\n")
    assert [t for t, _ in _imports(mod)] == ["boto3", "os"]


def test_streamer_imports_desk_only() -> None:
    # The Fargate streamer ships the desk layer, not the quant layer or any function (ARCHITECTURE.md).
    streamer = ROOT / "services" / "streamer"
    offences = []
    for path in streamer.rglob("*.py") if streamer.exists() else []:
        for top, line in _imports(path):
            if top in {"quant", "functions"}:
                offences.append(f"{path.relative_to(ROOT)}:{line} imports {top}")
    assert offences == []
