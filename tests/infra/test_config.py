"""The per-environment config model (clear errors at synth) and the packaging rules it feeds.

No synth here: these are plain pydantic and file-system checks (fast).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra import packaging
from infra.config_model import CONFIG_DIR, ConfigError, load_config


def _write(tmp_path: Path, env: str, **changes: object) -> Path:
    raw = json.loads((CONFIG_DIR / f"{env}.json").read_text())
    for dotted, value in changes.items():
        node = raw
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    (tmp_path / f"{env}.json").write_text(json.dumps(raw))
    return tmp_path


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_committed_configs_validate(env: str) -> None:
    config = load_config(env)
    assert config.environment == env
    assert config.prefix == f"lambda-desk-{env}"


def test_dev_scales_to_zero_and_is_disposable() -> None:
    dev = load_config("dev")
    assert dev.aurora.min_acu == 0
    assert dev.removal_policy == "destroy"


def test_bad_values_fail_with_every_problem_named(tmp_path: Path) -> None:
    # Given a config with three mistakes
    directory = _write(tmp_path, "dev", aurora__min_acu=3, aurora__max_acu=2, log_retention_days=8, nat__mode="cheap")
    # When loaded, Then one error names the file and each field
    with pytest.raises(ConfigError) as err:
        load_config("dev", directory)
    message = str(err.value)
    assert "dev.json is invalid" in message
    assert "min_acu (3.0) exceeds max_acu (2.0)" in message
    assert "log_retention_days" in message
    assert "nat.mode" in message


def test_unknown_field_and_unknown_environment_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="db_password"):
        load_config("dev", _write(tmp_path, "dev", db_password="not-a-real-value"))  # noqa: S106 - must be rejected
    with pytest.raises(ConfigError, match="unknown environment 'qa'"):
        load_config("qa")


def test_prod_cannot_be_destroyed_and_azs_must_match_region(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="prod must not use removal_policy 'destroy'"):
        load_config("prod", _write(tmp_path, "prod", removal_policy="destroy"))
    with pytest.raises(ConfigError, match="not in region"):
        load_config("prod", _write(tmp_path, "prod", availability_zones=["eu-west-1a", "eu-west-1b"]))


def test_half_acu_steps_and_bad_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"steps of 0\.5"):
        load_config("dev", _write(tmp_path, "dev", aurora__max_acu=2.3))
    (tmp_path / "staging.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config("staging", tmp_path)


# --- packaging: the rules size-check applies, on a tiny fake asset -------------------------------


def test_size_check_counts_pyc_and_libs_and_flags_the_limit(tmp_path: Path) -> None:
    # Given a function and a layer with .pyc files and a vendored *.libs directory
    fn = tmp_path / "fn" / "functions" / "x"
    fn.mkdir(parents=True)
    (fn / "handler.py").write_bytes(b"a" * 1000)
    (fn / "__pycache__").mkdir()
    (fn / "__pycache__" / "handler.cpython-312.pyc").write_bytes(b"b" * 500)
    layer = tmp_path / "layer" / "python" / "numpy.libs"
    layer.mkdir(parents=True)
    (layer / "libopenblas.so").write_bytes(b"c" * 3000)
    # When checked against a limit between the function alone and function + layer
    lines = packaging.check_sizes({"x": tmp_path / "fn"}, {"desk": tmp_path / "layer"})
    (line,) = lines
    # Then every byte counts (nothing stripped) and the limit applies to the total
    assert line.total == 4500
    assert line.ok
    tight = packaging.SizeLine("x", line.parts, limit=4000)
    assert not tight.ok
    assert "TOO BIG" in tight.render()


def test_pinned_requirements_follow_the_lock_and_skip_provided_packages() -> None:
    pins = packaging.pinned_requirements(["psycopg[binary]", "pydantic"])
    names = {p.split("==")[0] for p in pins}
    assert {"psycopg", "psycopg-binary", "pydantic", "pydantic-core"} <= names
    assert not names & {"boto3", "botocore"}
    assert all("==" in p for p in pins)
    arm = packaging.pinned_requirements(["psycopg[binary]"], architecture="arm64")
    assert packaging.platform_tags("arm64") == ["manylinux_2_28_aarch64", "manylinux2014_aarch64"]
    assert arm


def test_stage_function_copies_only_that_function(tmp_path: Path) -> None:
    assert packaging.stage_function("ingest_planner", tmp_path)
    assert (tmp_path / "functions" / "ingest_planner" / "handler.py").exists()
    assert (tmp_path / "functions" / "__init__.py").exists()
    assert not (tmp_path / "functions" / "regime").exists()


# --- which functions ship as zip, which as the container image ------------------------------------

_IMPORT_WITH_SLIM_LAYER = """
import importlib, sys
blocked = set(sys.argv[2].split(","))
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{name} is not in the slim desk layer")
sys.meta_path.insert(0, Block())
sys.path[:0] = [sys.argv[3] + "/layers/desk", sys.argv[3]]
importlib.import_module(f"functions.{sys.argv[1]}.handler")
"""


def test_slim_desk_layer_carries_no_venue_sdk_and_no_quant_stack() -> None:
    names = {p.split("==")[0] for p in packaging.pinned_requirements(packaging.DESK_LAYER_ROOTS)}
    assert {"pydantic", "pydantic-settings", "psycopg", "psycopg-binary", "psycopg-pool", "redis"} <= names
    assert {"yoyo-migrations"} <= names  # the migration custom resource (zip, inline code) runs yoyo
    assert not names & {"numpy", "pandas", "scipy", "numba", "ccxt", "alpaca-py", "requests"}


@pytest.mark.parametrize("name", packaging.zip_functions())
def test_every_zip_function_imports_with_the_slim_layer_alone(name: str) -> None:
    # Given a zip function, When its handler is imported with the image-only modules blocked
    import subprocess
    import sys

    blocked = ",".join(sorted(packaging.IMAGE_ONLY_MODULES))
    argv = [sys.executable, "-c", _IMPORT_WITH_SLIM_LAYER, name, blocked, str(packaging.REPO)]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=packaging.REPO, check=False)  # noqa: S603
    # Then it needs nothing the slim desk layer lacks
    assert result.returncode == 0, result.stderr[-2000:]


def test_functions_calling_venues_or_quant_are_images() -> None:
    # Venue adapters are imported lazily (desk.wiring.venue), so the handler's source is what tells
    calls_venue = ("wiring.venue(", "wiring.market_data(")
    for handler in sorted((packaging.REPO / "functions").glob("*/handler.py")):
        name = handler.parent.name
        if any(call in handler.read_text() for call in calls_venue):
            assert packaging.package_of(name) == "image", name
    assert packaging.package_of("api") == "image"  # the quant endpoints (numpy, pandas)
    assert packaging.zip_functions() == ["ingest_planner"]
    images = packaging.image_functions()
    assert "api" in images and "ingest_planner" not in images
    assert set(images) | {"ingest_planner"} == {
        p.parent.name for p in (packaging.REPO / "functions").glob("*/handler.py")
    }
