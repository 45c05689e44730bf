"""``make bench``: run every ``benchmarks/bench_*.py`` module (or those named) and print the table."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from benchmarks.harness import Result, report, run


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = argv or sorted(p.stem for p in here.glob("bench_*.py"))
    results: list[Result] = []
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        for bench in module.BENCHMARKS:
            print(f"running {bench.name} ...", file=sys.stderr, flush=True)
            results.append(run(bench))
    print(report(results))
    missed = [r.bench.name for r in results if r.met is False]
    if missed:
        print(f"\n{len(missed)} below target: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
