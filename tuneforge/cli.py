"""`tuneforge <verb> ...`: the thin command line. The verbs are the modules of
`tuneforge.commands` (one file each); this file only builds the parser from them and turns user
errors into one line on stderr (`error: ...`) with exit code 2."""

from __future__ import annotations

import argparse
import logging
import sys

from tuneforge.errors import TuneforgeError


def build_parser() -> argparse.ArgumentParser:
    from tuneforge.commands import COMMANDS

    p = argparse.ArgumentParser(
        prog="tuneforge", description="Fine-tune, inspect, evaluate, chat with, export and serve models."
    )
    sub = p.add_subparsers(dest="verb", required=True)
    for name in COMMANDS.names():
        module = COMMANDS.get(name)
        module.add_arguments(sub.add_parser(name, help=module.HELP, description=module.HELP))
    return p


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import transformers

    transformers.logging.set_verbosity_warning()


def run(argv: list[str]) -> int:
    if argv[:1] == ["train"] and "--help-config" in argv:  # before argparse demands a CONFIG
        from tuneforge.config.reference import reference_text

        print(reference_text())
        return 0
    from tuneforge.commands import COMMANDS

    args = build_parser().parse_args(argv)
    module = COMMANDS.get(args.verb)
    if getattr(module, "SETUP_LOGGING", True):
        _setup_logging()
    return int(module.run(args) or 0)


def main(argv: list[str] | None = None) -> None:
    if argv is None:  # a process of its own: before any import allocates (tuneforge.speed.huge_pages)
        from tuneforge.speed.huge_pages import set_at_process_start

        set_at_process_start(sys.argv[1:])
    try:
        code = run(sys.argv[1:] if argv is None else argv)
    except TuneforgeError as e:
        print(f"error: {e}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("interrupted; resume with train.resume_from_checkpoint=auto", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
