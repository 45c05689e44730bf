"""Lambda packaging without Docker: the desk layer, the zip functions, and ``size-check``.

The layer's third-party packages are installed by pip for Lambda's platform (manylinux wheels only,
``--only-binary=:all:``) at the versions pinned in ``uv.lock``, so the layer holds exactly what the
tests ran against. Measured facts this module respects (ARCHITECTURE.md, "Packaging"): compiled
``.pyc`` are kept (cold start), files under ``*.libs/`` are never stripped (they are the wheels'
vendored shared libraries), and Lambda allows 250 MB unzipped per function *with* its layers.

``python infra/packaging.py size-check`` builds every zip asset and layer under ``build/`` and prints
each zip function's unzipped total against that limit; it exits non-zero when one exceeds it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from packaging.markers import Marker
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "uv.lock"
BUILD = REPO / "build"
LAMBDA_LIMIT_BYTES = 250 * 1024 * 1024
PYTHON_VERSION = "3.12"
LAYER_SITE = f"python/lib/python{PYTHON_VERSION}/site-packages"

Architecture = Literal["x86_64", "arm64"]

# What the slim desk layer carries beyond the standard library: what the zip functions (and the
# migration custom resource) import. No venue SDK (ccxt, alpaca-py) and no quant stack (numpy,
# pandas, scipy, numba): with them the layer is ~292 MB and no zip function fits in 250 MB, so every
# function that imports either ships as a container image (infra/docker/Dockerfile, 10 GB limit).
DESK_LAYER_ROOTS: tuple[str, ...] = (
    "pydantic",
    "pydantic-settings",
    "psycopg[binary]",
    "psycopg-pool",
    "redis",
    "yoyo-migrations",
)
# Top-level modules a zip function must never import (not in the slim desk layer): the test suite
# imports every zip handler with these blocked.
IMAGE_ONLY_MODULES: frozenset[str] = frozenset(
    {"numpy", "pandas", "scipy", "numba", "ccxt", "alpaca", "quant", "requests"}
)
# Functions with a handler under functions/ that topology.json does not declare (the API, built by
# infra/stacks/api.py; state-machine task functions built by infra/stacks/trading.py). They serve
# quant endpoints or call venues, so they are images.
PACKAGE_OUTSIDE_TOPOLOGY: Literal["zip", "image"] = "image"
# Provided by the Lambda runtime (boto3 family) or by AWS's Powertools layer: never duplicated.
PROVIDED: frozenset[str] = frozenset({"boto3", "botocore", "s3transfer", "aws-lambda-powertools", "aws-xray-sdk"})
# The Powertools layer's own content, used only to *estimate* its unzipped size in size-check.
POWERTOOLS_ESTIMATE_ROOTS: tuple[str, ...] = ("aws-lambda-powertools", "aws-xray-sdk", "fastjsonschema")


def platform_tags(architecture: Architecture) -> list[str]:
    machine = "x86_64" if architecture == "x86_64" else "aarch64"
    return [f"manylinux_2_28_{machine}", f"manylinux2014_{machine}"]


def _marker_env(architecture: Architecture) -> dict[str, str]:
    return {
        "python_version": PYTHON_VERSION,
        "python_full_version": f"{PYTHON_VERSION}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "os_name": "posix",
        "platform_system": "Linux",
        "platform_machine": "x86_64" if architecture == "x86_64" else "aarch64",
        "extra": "",
    }


def _split_extra(requirement: str) -> tuple[str, tuple[str, ...]]:
    name, _, rest = requirement.partition("[")
    extras = tuple(e.strip() for e in rest.rstrip("]").split(",") if e.strip()) if rest else ()
    return canonicalize_name(name), extras


def pinned_requirements(
    roots: Iterable[str],
    *,
    architecture: Architecture = "x86_64",
    lock: Path = LOCK,
    exclude: Iterable[str] = PROVIDED,
) -> list[str]:
    """``name==version`` for ``roots`` and everything they pull in, as pinned in ``uv.lock``.

    Dependency markers are evaluated for Lambda (Linux, CPython 3.12, the given architecture);
    excluded names (and their exclusive dependencies) are left out.
    """
    packages: dict[str, dict[str, Any]] = {}
    for pkg in tomllib.loads(lock.read_text())["package"]:
        packages.setdefault(canonicalize_name(pkg["name"]), pkg)
    skip = {canonicalize_name(n) for n in exclude}
    env = _marker_env(architecture)
    seen: dict[str, str] = {}
    todo = [_split_extra(r) for r in roots]
    while todo:
        name, extras = todo.pop()
        if name in skip:
            continue
        pkg = packages.get(name)
        if pkg is None:
            raise KeyError(f"{name} is not in {lock.name}: add it to pyproject.toml and re-lock")
        deps = list(pkg.get("dependencies", []))
        for extra in extras:
            deps += pkg.get("optional-dependencies", {}).get(extra, [])
        first_visit = name not in seen
        seen[name] = pkg["version"]
        if not first_visit and not extras:
            continue
        for dep in deps:
            marker = dep.get("marker")
            if marker and not Marker(marker).evaluate(env):
                continue
            todo.append((canonicalize_name(dep["name"]), tuple(dep.get("extra", ()))))
    return sorted(f"{n}=={v}" for n, v in seen.items())


@cache
def python312() -> str | None:
    """A working CPython 3.12 (Lambda's), or None; pyenv shims that are not activated are skipped."""
    candidates = [
        shutil.which("python3.12"),
        *sorted(map(str, Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))),
    ]
    for candidate in candidates:
        probe = [candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 12)"] if candidate else None
        if probe and subprocess.run(probe, capture_output=True).returncode == 0:  # noqa: S603 - fixed argv
            return candidate
    return None


def _pip() -> list[str]:
    """A pip able to download for another platform; python3.12's own when present (same tags)."""
    for candidate in (python312(), sys.executable):
        probe = [candidate, "-m", "pip", "--version"] if candidate else None
        if probe and subprocess.run(probe, capture_output=True).returncode == 0:  # noqa: S603 - fixed argv
            return [candidate, "-m", "pip"]
    tools_pip = REPO / ".tools" / "bin" / "pip"
    if tools_pip.exists():
        return [str(tools_pip)]
    raise RuntimeError("no pip found: install python3.12 or run `make env`")


def pip_install(requirements: Sequence[str], target: Path, architecture: Architecture) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if not requirements:
        return
    cmd = [*_pip(), "install", "--quiet", "--disable-pip-version-check", "--no-compile", "--no-deps"]
    for tag in platform_tags(architecture):
        cmd += ["--platform", tag]
    cmd += ["--implementation", "cp", "--python-version", PYTHON_VERSION, "--only-binary=:all:"]
    cmd += ["--upgrade", "--target", str(target), *requirements]
    subprocess.run(cmd, check=True)  # noqa: S603 - fixed argv, pinned requirements


def compile_pyc(target: Path) -> None:
    """Compile .pyc with CPython 3.12 (Lambda's), hash-checked so zipping's mtimes do not stale them."""
    interpreter = python312()
    if interpreter is None:
        print(f"warning: python3.12 not found, {target} ships without .pyc (slower cold start)", file=sys.stderr)
        return
    subprocess.run(  # noqa: S603 - fixed argv
        [interpreter, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(target)],
        check=False,
    )


def copy_tree(source: Path, destination: Path) -> None:
    shutil.copytree(source, destination, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def requirements_digest(roots: Sequence[str] = DESK_LAYER_ROOTS, architecture: Architecture = "x86_64") -> str:
    text = "\n".join(pinned_requirements(roots, architecture=architecture))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tree_digest(paths: Iterable[Path]) -> str:
    """A content hash of files and directories (sorted, ``__pycache__`` ignored) for asset hashes."""
    digest = hashlib.sha256()
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(str(file.relative_to(REPO)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:32]


# --- what goes into each asset ------------------------------------------------------------------


def stage_function(name: str, output: Path) -> bool:
    """A zip function's content: ``functions/__init__.py`` and ``functions/<name>/``. False if absent."""
    source = REPO / "functions" / name
    (output / "functions").mkdir(parents=True, exist_ok=True)
    init = REPO / "functions" / "__init__.py"
    (output / "functions" / "__init__.py").write_text(init.read_text() if init.exists() else "")
    if not source.is_dir():
        return False
    copy_tree(source, output / "functions" / name)
    compile_pyc(output)
    return True


def build_desk_layer(output: Path, architecture: Architecture, *, install: bool = True) -> None:
    """The desk layer: ``desk`` plus its pinned dependencies, under ``python/lib/python3.12/site-packages``.

    That directory precedes ``/opt/python`` on Lambda's ``sys.path`` and is a different directory
    from the Powertools layer's, so the two layers' files never overlay one another.
    """
    site = output / LAYER_SITE
    if install:
        pip_install(pinned_requirements(DESK_LAYER_ROOTS, architecture=architecture), site, architecture)
    copy_tree(REPO / "layers" / "desk" / "desk", site / "desk")
    compile_pyc(site)


# --- size-check -----------------------------------------------------------------------------------


def unzipped_size(path: Path) -> int:
    """Bytes on disk once extracted: every regular file, .pyc and ``*.libs/`` included."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


@dataclass(frozen=True)
class SizeLine:
    function: str
    parts: Mapping[str, int]
    limit: int = LAMBDA_LIMIT_BYTES

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    @property
    def ok(self) -> bool:
        return self.total <= self.limit

    def render(self) -> str:
        mb = 1024 * 1024
        detail = " + ".join(f"{k} {v / mb:.1f}" for k, v in self.parts.items())
        flag = "ok" if self.ok else "TOO BIG"
        return f"{self.function:<22} {self.total / mb:8.1f} MB / {self.limit / mb:.0f} MB  {flag:<7}  ({detail})"


def check_sizes(function_dirs: Mapping[str, Path], layers: Mapping[str, Path]) -> list[SizeLine]:
    """One line per zip function: its own files plus every layer it carries."""
    layer_sizes = {name: unzipped_size(path) for name, path in layers.items()}
    return [SizeLine(fn, {"function": unzipped_size(path), **layer_sizes}) for fn, path in function_dirs.items()]


def package_of(name: str, topology_path: Path = REPO / "topology.json") -> Literal["zip", "image"]:
    """How function ``name`` ships: topology.json's ``"package"``, else ``PACKAGE_OUTSIDE_TOPOLOGY``."""
    spec = json.loads(topology_path.read_text())["functions"].get(name)
    package = spec["package"] if spec is not None else PACKAGE_OUTSIDE_TOPOLOGY
    if package not in ("zip", "image"):
        raise ValueError(f"{name}: package must be 'zip' or 'image', not {package!r}")
    return package  # type: ignore[no-any-return]


def zip_functions(topology_path: Path = REPO / "topology.json") -> list[str]:
    topology = json.loads(topology_path.read_text())
    names = [n for n in topology["functions"] if package_of(n, topology_path) == "zip"]
    extra = sorted(p.name for p in (REPO / "functions").iterdir() if p.is_dir() and p.name not in topology["functions"])
    extra = [n for n in extra if (REPO / "functions" / n / "handler.py").exists()]
    return names + [n for n in extra if package_of(n, topology_path) == "zip"]


def image_functions(topology_path: Path = REPO / "topology.json") -> list[str]:
    """Every function with a handler that ships as a container image."""
    topology = json.loads(topology_path.read_text())
    extra = sorted(p.name for p in (REPO / "functions").iterdir() if (p / "handler.py").exists())
    names = list(topology["functions"]) + [n for n in extra if n not in topology["functions"]]
    return [n for n in names if package_of(n, topology_path) == "image"]


def size_check(architecture: Architecture, build: Path = BUILD / "size-check") -> int:
    shutil.rmtree(build, ignore_errors=True)
    print(f"building the desk layer for {architecture} (pip downloads, may take minutes)...", flush=True)
    build_desk_layer(build / "layers" / "desk", architecture)
    pt = build / "layers" / "powertools-estimate" / "python"
    pip_install(pinned_requirements(POWERTOOLS_ESTIMATE_ROOTS, architecture=architecture, exclude=()), pt, architecture)
    compile_pyc(pt)
    functions = {}
    for name in zip_functions():
        stage_function(name, build / "functions" / name)
        functions[name] = build / "functions" / name
    lines = check_sizes(functions, {"desk layer": build / "layers" / "desk", "powertools*": pt.parent})
    print("\nunzipped size per zip function (function + its layers), MB; * = estimated from the locked wheels")
    for line in lines:
        print(line.render())
    print(f"slim desk layer roots: {', '.join(DESK_LAYER_ROOTS)}")
    print(
        f"image functions ({', '.join(image_functions())}): one container image from infra/docker/Dockerfile"
        " (10 GB limit), sized by `docker image ls` after `cdk deploy`"
    )
    return 0 if all(line.ok for line in lines) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Lambda Desk packaging")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("size-check", help="build every zip asset and layer; fail if one exceeds 250 MB")
    check.add_argument("--architecture", choices=["x86_64", "arm64"], default=os.environ.get("ARCH", "x86_64"))
    req = sub.add_parser("requirements", help="print the desk layer's pinned requirements")
    req.add_argument("--architecture", choices=["x86_64", "arm64"], default="x86_64")
    args = parser.parse_args(argv)
    if args.command == "size-check":
        return size_check(args.architecture)
    print("\n".join(pinned_requirements(DESK_LAYER_ROOTS, architecture=args.architecture)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
