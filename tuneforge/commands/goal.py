"""`tuneforge goal GOAL.yaml [key=value ...]`: from a goal to a shipped model in one command: data
generated (or given), candidates trained and measured on held-out checks, a report, the winner
exported (`tuneforge.runs.goal`). Run it again after a crash: finished steps are not redone."""

from __future__ import annotations

import argparse

HELP = "generate data, train candidates, measure them on held-out checks, report and ship the winner"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("goal", help="goal YAML (see docs/generate.md)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. out=runs/goal-2")


def run(args: argparse.Namespace) -> int:
    from tuneforge.runs.goal import load_goal, run_goal

    result = run_goal(load_goal(args.goal, args.overrides), args.goal)
    return 0 if result["best"] else 1
