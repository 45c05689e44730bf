"""The desk's command line: ``python -m desk.cli <command>``."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of days")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="desk", description="Lambda Desk command line")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the demo on embedded defaults and write the HTML report")
    demo.add_argument("--out", type=Path, default=Path("reports/demo"), help="report directory")
    demo.add_argument("--days", type=_positive, default=None, help="simulated days the pipeline replays (default 150)")
    demo.add_argument(
        "--universe",
        default="BTC,ETH,LTC",
        help="comma-separated assets replayed as <asset>/USDT daily bars (from BTC, ETH, LTC)",
    )
    demo.add_argument("--quant-only", action="store_true", help="skip the pipeline: only the quant report")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from desk.local.demo import run_demo
        from desk.local.desk_run import PipelineConfig

        assets = tuple(a.strip().upper() for a in args.universe.split(",") if a.strip())
        if not assets:
            parser.error("--universe needs at least one asset")
        config = PipelineConfig(assets=assets)
        if args.days is not None:
            config = replace(config, days=args.days)
        path = run_demo(args.out, pipeline=config, quant_only=args.quant_only)
        print(f"report written to {path.resolve()}")
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands first


if __name__ == "__main__":
    sys.exit(main())
