"""The build-time warm-up reaches every numba kernel, and a second process loads them all from cache.

This is what the container image relies on (``RUN python -m quant.warmup`` with ``NUMBA_CACHE_DIR``
set): a kernel the warm-up misses would compile on a cold Lambda's first call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

QUANT_ROOT = Path(__file__).resolve().parents[3] / "layers" / "quant"

PROBE = """
import json
from quant import warmup
warmup.warmup()
stats = {name: [sum(d.stats.cache_hits.values()), sum(d.stats.cache_misses.values())]
         for name, d in warmup.kernels().items()}
print(json.dumps({"uncompiled": warmup.uncompiled(), "stats": stats}))
"""


def _run(args: list[str], cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(QUANT_ROOT)}
    command = [sys.executable, *args]  # our own interpreter and module, no outside input
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603


def test_warmup_compiles_every_kernel_and_a_second_process_hits_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "numba-cache"
    first = _run(["-m", "quant.warmup"], cache)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "not reached: none" in first.stdout
    assert any(cache.rglob("*.nbi")), "warm-up wrote no cache index"

    second = _run(["-c", PROBE], cache)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout.strip().splitlines()[-1])
    misses = {name: m for name, (_, m) in report["stats"].items() if m}
    assert misses == {}, f"compiled again instead of loading from cache: {misses}"
    # Kernels called only from other kernels are linked into their callers' cached code and are
    # never dispatched on their own in a warm process; every kernel that is dispatched hits.
    hits = {name for name, (h, _) in report["stats"].items() if h}
    assert hits == set(report["stats"]) - set(report["uncompiled"])
    assert len(hits) >= 30
