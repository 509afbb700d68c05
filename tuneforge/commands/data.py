"""`tuneforge data inspect CONFIG.yaml`: rendered samples with trained tokens marked, and statistics."""

from __future__ import annotations

import argparse

HELP = "data tools (inspect)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="data_verb", required=True)
    di = sub.add_parser("inspect", help="show rendered samples with trained tokens marked, and statistics")
    di.add_argument("config")
    di.add_argument("overrides", nargs="*")
    di.add_argument("-n", "--num-samples", type=int, default=3)
    di.add_argument("--color", choices=["auto", "always", "never"], default="auto")


def run(args: argparse.Namespace) -> int:
    from tuneforge.config import load_config
    from tuneforge.inspect_data import inspect_data

    color = {"auto": None, "always": True, "never": False}[args.color]
    print(inspect_data(load_config(args.config, args.overrides), args.num_samples, color))
    return 0
