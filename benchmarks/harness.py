"""A small benchmark harness: our kernel against a reference, timed in the same run.

Each ``benchmarks/bench_*.py`` module defines ``BENCHMARKS: list[Bench]``. For every bench the
runner builds the inputs once, times the first call of ours separately (numba JIT compile, which a
deployed function pays at build time, not per call), then takes the best of ``repeat`` timed runs
of ours and of the reference, and prints the ratio reference / ours against the target.
No test asserts on these times; they are a report.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Bench:
    name: str
    setup: Callable[[], Any]
    ours: Callable[[Any], Any]
    reference: Callable[[Any], Any] | None
    reference_name: str
    target: float  # required speed-up (reference time / our time); 1.0 = at least as fast
    repeat: int = 5
    note: str = ""


@dataclass
class Result:
    bench: Bench
    compile_s: float
    ours_s: float
    reference_s: float | None

    @property
    def ratio(self) -> float | None:
        return None if self.reference_s is None else self.reference_s / self.ours_s

    @property
    def met(self) -> bool | None:
        r = self.ratio
        return None if r is None else r >= self.bench.target


def _best(fn: Callable[[Any], Any], arg: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn(arg)
        best = min(best, time.perf_counter() - t0)
    return best


def run(bench: Bench) -> Result:
    data = bench.setup()
    t0 = time.perf_counter()
    bench.ours(data)  # first call: JIT compile (or cache load) + one run
    first = time.perf_counter() - t0
    ours = _best(bench.ours, data, bench.repeat)
    ref = None
    if bench.reference is not None:
        bench.reference(data)  # warm the reference too (imports, its own caches)
        ref = _best(bench.reference, data, bench.repeat)
    return Result(bench, max(first - ours, 0.0), ours, ref)


def fmt_s(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1e3:9.2f} ms" if s < 10 else f"{s:9.2f} s "


def report(results: list[Result]) -> str:
    head = (
        f"{'benchmark':44} {'ours':>12} {'reference':>12} {'ref/ours':>9} {'target':>7} {'met':>4} {'jit':>10}"
        "  reference"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        ratio = "-" if r.ratio is None else f"{r.ratio:8.2f}x"
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        lines.append(
            f"{r.bench.name:44} {fmt_s(r.ours_s):>12} {fmt_s(r.reference_s):>12} {ratio:>9} "
            f"{r.bench.target:6.1f}x {met:>4} {fmt_s(r.compile_s):>10}  {r.bench.reference_name}"
            + (f"  ({r.bench.note})" if r.bench.note else "")
        )
    return "\n".join(lines)
