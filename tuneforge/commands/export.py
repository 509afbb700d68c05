"""`tuneforge export RUN_DIR --merge OUT_DIR`: a merged model plain transformers loads (see
tuneforge.export)."""

from __future__ import annotations

import argparse

HELP = "export a trained run"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir")
    p.add_argument("--merge", metavar="OUT_DIR", required=True, help="write a merged HF model folder")
    p.add_argument("--no-check-stop", action="store_true", help="skip the check that generation stops")


def run(args: argparse.Namespace) -> int:
    from tuneforge.export import export_merged

    info = export_merged(args.run_dir, args.merge, check_stop=not args.no_check_stop)
    print(
        f"merged model written to {info['out']}: reloaded with plain transformers, max logit "
        f"difference {info['max_logit_diff']:.2e}, stops at its end-of-turn token: {info['stops']}"
    )
    return 0
