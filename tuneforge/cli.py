"""`tuneforge <verb> ...`: the thin command line. The verbs are the modules of
`tuneforge.commands` (one file each); this file only builds the parser from them, runs the verb
inside a console session (`tuneforge.console`: what is shown, what goes to the log file, `--verbose`),
turns user errors into one line on stderr (`error: ...`) with exit code 2, and Ctrl-C into the
verb's own line (its `interrupted` hook) with exit code 130."""

from __future__ import annotations

import argparse
import sys

from tuneforge import console, threads
from tuneforge.errors import TuneforgeError

VERBOSE_HELP = "show every library's messages and progress bars (by default kept in the log file)"


def build_parser() -> argparse.ArgumentParser:
    from tuneforge.commands import COMMANDS

    p = argparse.ArgumentParser(
        prog="tuneforge", description="Fine-tune, inspect, evaluate, chat with, export and serve models."
    )
    sub = p.add_subparsers(dest="verb", required=True)
    for name in COMMANDS.names():
        module = COMMANDS.get(name)
        module.add_arguments(sub.add_parser(name, help=module.HELP, description=module.HELP))
    _add_verbose(p, default=False)
    return p


def _add_verbose(p: argparse.ArgumentParser, default) -> None:
    """--verbose on the parser and, so that it works after any verb or sub-verb, on every subparser
    (there without a default, which would reset the value given before the verb)."""
    p.add_argument("--verbose", action="store_true", default=default, help=VERBOSE_HELP)
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_verbose(child, argparse.SUPPRESS)


def verb_of(argv: list[str]) -> str | None:
    """The verb of a command line: its first word that is not an option (``--verbose train``)."""
    return next((a for a in argv if not a.startswith("-")), None)


def run(argv: list[str]) -> int:
    if verb_of(argv) == "train" and "--help-config" in argv:  # before argparse demands a CONFIG
        from tuneforge.config.reference import reference_text

        print(reference_text())
        return 0
    from tuneforge.commands import COMMANDS

    args = build_parser().parse_args(argv)
    console.set_verbose(args.verbose)
    module = COMMANDS.get(args.verb)
    if COMMANDS.hook(module, "SETUP_LOGGING"):
        console.quiet_libraries()
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        say = COMMANDS.hook(module, "interrupted")
        print("interrupted" if say is None else say(args), file=sys.stderr)
        return 130


def _start_process(argv: list[str], fresh: bool) -> None:
    """The verb's start-up step (`CommandModule.start_process`: the train verb's huge pages,
    allocator and CPU threads), before argparse and before anything allocates."""
    from tuneforge.commands import COMMANDS

    verb = verb_of(argv)
    if verb in COMMANDS:
        start = COMMANDS.hook(verb, "start_process")
        if start is not None:
            start(argv[argv.index(verb) + 1 :], fresh_process=fresh)


def main(argv: list[str] | None = None) -> None:
    fresh, argv = argv is None, sys.argv[1:] if argv is None else argv
    with console.session(verb_of(argv) or "tuneforge", "--verbose" in argv, argv), threads.command(fresh):
        try:
            _start_process(argv, fresh)
            code = run(argv)
        except TuneforgeError as e:
            print(f"error: {e}", file=sys.stderr)
            code = 2
        except KeyboardInterrupt:  # before the verb ran (its own line comes from `run`)
            print("interrupted", file=sys.stderr)
            code = 130
    if fresh:  # the interpreter's final collection walks every object torch made (seconds); skip it
        import gc

        gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    main()
