"""`tuneforge train CONFIG.yaml [key=value ...]`: a training run (see tuneforge.train)."""

from __future__ import annotations

import argparse
import sys

HELP = "train from a YAML config"
EPILOG = "Overrides are dotted keys: train.learning_rate=2e-4 method.r=16 data.datasets.0.path=x.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    if sys.argv[1:2] == ["train"] and {"-h", "--help"} & set(sys.argv):
        from tuneforge.config.reference import reference_text  # only when help is asked for

        p.epilog += "\n\n" + reference_text()
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("config", help="YAML config file")
    p.add_argument("overrides", nargs="*", help="key=value overrides")
    p.add_argument("--help-config", action="store_true", help="print every config key with its description")


def run(args: argparse.Namespace) -> int:
    from tuneforge.config import load_config
    from tuneforge.speed.launch import launch, needs_launch
    from tuneforge.train import run_training

    cfg = load_config(args.config, args.overrides)
    if needs_launch(cfg.train):  # train.nproc_per_node / nnodes > 1: rerun this command under torchrun
        return launch(cfg.train, ["train", args.config, *args.overrides])
    run_dir = run_training(cfg)
    if run_dir is None:  # a rank other than 0 of a distributed run
        return 0
    print(f"\nrun saved in {run_dir}\nchat with it:  tuneforge chat {run_dir}")
    return 0
