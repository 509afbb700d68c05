"""`tuneforge sweep CONFIG --grid key=v1,v2 ... [--out DIR] [--metric NAME]`: train every
combination of the grid (see tuneforge.runs.sweep), resumably, and rank them in a leaderboard."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "train a grid of config variants and rank them (leaderboard)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="base YAML config")
    p.add_argument("overrides", nargs="*", help="key=value overrides applied to every candidate")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a config key and its values, e.g. train.learning_rate=1e-4,3e-4 (repeat for more keys)",
    )
    p.add_argument("--out", help="parent folder of the candidates' runs (default runs/sweep-<config name>)")
    p.add_argument(
        "--metric",
        help="rank by this metric: accuracy, eval_loss, train_loss, peak_rss_mb, tokens_per_s, or any "
        "number in the runs' manifests by name (default: accuracy, else eval_loss, else train_loss)",
    )
    order = p.add_mutually_exclusive_group()
    order.add_argument(
        "--minimize", action="store_const", const=True, dest="minimize", help="lower is better"
    )
    order.add_argument(
        "--maximize", action="store_const", const=False, dest="minimize", help="higher is better"
    )


def run(args: argparse.Namespace) -> int:
    from tuneforge.runs.sweep import sweep

    config = Path(args.config)
    out = Path(args.out) if args.out else Path("runs") / f"sweep-{config.stem}"
    result = sweep(config, args.grid, out, args.overrides, args.metric, args.minimize)
    return 1 if any(r["status"] == "failed" for r in result["rows"]) else 0


def start_process(argv: list[str], fresh_process: bool = True) -> None:
    """One CPU thread count for every candidate, chosen now (`tuneforge.threads.choose_for_children`)."""
    from tuneforge.threads import choose_for_children

    choose_for_children(argv, fresh_process)


def interrupted(args: argparse.Namespace) -> str:
    return _resume_hint("tuneforge sweep")


def _resume_hint(command: str) -> str:
    """Ctrl-C on a candidate runner (sweep, bench): it is resumable (`tuneforge.runs.candidates`)."""
    return (
        f"interrupted; run the same {command} command again to continue: finished candidates are "
        "kept and the interrupted one resumes from its newest checkpoint"
    )
