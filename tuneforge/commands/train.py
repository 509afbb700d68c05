"""`tuneforge train CONFIG.yaml [key=value ...]`: a training run (see tuneforge.train).

`start_process` is the train verb's start-up step, run by `tuneforge.cli.main` before argparse and
before any heavy import: the process-wide decisions a run may not make from inside a library call
(huge pages for CPU tensors, which PyTorch reads at its first allocation; what glibc does with freed
memory; how many CPU threads PyTorch uses, `tuneforge.threads`) are taken here, from a plain read of
the config file and its ``key=value`` arguments.
"""

from __future__ import annotations

import argparse
import os
import sys

from tuneforge.commands._config import add_trust_flag, load_command_config

HELP = "train from a YAML config"
EPILOG = "Overrides are dotted keys: train.learning_rate=2e-4 method.r=16 data.datasets.0.path=x.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    verb = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    if verb == "train" and {"-h", "--help"} & set(sys.argv):
        from tuneforge.config.reference import reference_text  # only when help is asked for

        p.epilog += "\n\n" + reference_text()
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("config", help="YAML config file")
    p.add_argument("overrides", nargs="*", help="key=value overrides")
    p.add_argument("--help-config", action="store_true", help="print every config key with its description")
    add_trust_flag(p)


def start_process(argv: list[str], fresh_process: bool = True) -> None:
    """Before anything is imported that allocates: huge pages (only in a ``fresh_process``: they
    cannot take effect later, and `tuneforge.cli.main` called inside another program must not change
    its environment), the allocator and the CPU threads, as the config asks (read unvalidated; the
    run validates it and reports what took effect)."""
    from tuneforge import threads
    from tuneforge.config.deprecations import upgrade
    from tuneforge.config.raw import read_raw
    from tuneforge.errors import ConfigError
    from tuneforge.speed.host_memory import apply_at_process_start
    from tuneforge.speed.huge_pages import set_at_process_start

    words = [a for a in argv if not a.startswith("-")]
    path = words[0] if words and "=" not in words[0] else None
    try:
        raw = upgrade(read_raw(path, [w for w in words if "=" in w]), "config", quiet=True)
    except ConfigError:
        return  # loading the config reports it
    speed, train = (raw.get(k) if isinstance(raw.get(k), dict) else {} for k in ("speed", "train"))
    if fresh_process:
        set_at_process_start(speed)
    apply_at_process_start(speed)
    threads.start(
        argv,
        fresh_process,
        setting=train.get("num_threads"),
        how_to_choose="set train.num_threads to choose",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tuneforge import console
    from tuneforge.artifacts.folder import is_run_folder
    from tuneforge.errors import ConfigError
    from tuneforge.scale.launch import launch, needs_launch
    from tuneforge.train import run_training

    cfg = load_command_config(args)
    if needs_launch(cfg.scale):  # scale.nproc_per_node / nnodes > 1: rerun this command under torchrun
        from tuneforge.scale.engines import check_engine

        check_engine(cfg.scale, cfg.scale.nproc_per_node * cfg.scale.nnodes)  # before any rank starts
        flag = ["--trust-remote-code"] if args.trust_remote_code else []
        return launch(cfg.scale, ["train", args.config, *args.overrides, *flag])
    refused = False
    try:
        run_dir = run_training(cfg, config_path=args.config)
    except ConfigError:  # refused before the run folder was this run's: its log stays in the cache
        refused = True
        raise
    finally:
        out = Path(cfg.output.dir)
        if not refused and os.environ.get("RANK", "0") == "0" and is_run_folder(out):
            console.keep_log_in(out)
    if run_dir is None:  # a rank other than 0 of a distributed run
        return 0
    print(f"\nrun saved in {run_dir}\nchat with it:  tuneforge chat {run_dir}")
    return 0


def interrupted(args: argparse.Namespace) -> str:
    """Ctrl-C: the command that continues from the newest checkpoint (starting over if none was written)."""
    import shlex

    again = [a for a in args.overrides if not a.startswith("train.resume_from_checkpoint=")]
    flag = ["--trust-remote-code"] if args.trust_remote_code else []
    command = shlex.join(
        ["tuneforge", "train", args.config, *again, "train.resume_from_checkpoint=auto", *flag]
    )
    return f"interrupted; resume with train.resume_from_checkpoint=auto: {command}"
