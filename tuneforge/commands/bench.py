"""`tuneforge bench methods CONFIG [--methods a,b,c] [--steps N] [--settings FILE]`: every tuning
method on the same model, data and budget (see tuneforge.runs.bench), one table and plot."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "benchmark tuning methods on one config (memory, speed, loss, accuracy, size)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="what", required=True)
    m = sub.add_parser("methods", help="every registered method (or --methods) on the same budget")
    m.add_argument("config", help="base YAML config (model, data, train, compare)")
    m.add_argument("overrides", nargs="*", help="key=value overrides applied to every method")
    m.add_argument("--methods", help="comma-separated method (or settings-file) names; default: all")
    m.add_argument("--steps", type=int, help="train.max_steps for every method")
    m.add_argument(
        "--settings",
        help="YAML mapping method -> partial config (method:, train: ...) merged over the defaults",
    )
    m.add_argument("--out", help="parent folder of the runs (default runs/bench-<config name>)")


def run(args: argparse.Namespace) -> int:
    from tuneforge.runs.bench import bench_methods

    config = Path(args.config)
    out = Path(args.out) if args.out else Path("runs") / f"bench-{config.stem}"
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    settings = Path(args.settings) if args.settings else None
    result = bench_methods(config, out, methods, args.steps, settings, args.overrides)
    return 1 if any(r["status"] == "failed" for r in result["rows"]) else 0


def start_process(argv: list[str], fresh_process: bool = True) -> None:
    """As `tuneforge sweep`: one CPU thread count for every candidate, chosen now."""
    from tuneforge.commands.sweep import start_process as sweep_start

    sweep_start(argv, fresh_process)


def interrupted(args: argparse.Namespace) -> str:
    from tuneforge.commands.sweep import _resume_hint

    return _resume_hint("tuneforge bench methods")
