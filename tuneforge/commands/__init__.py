"""CLI verbs, one module per name users type after `tuneforge` (train, data, chat, export, ls, ...).

What a command module defines is `CommandModule` below. `tuneforge.cli` builds the parser from this
registry, so adding a verb is one file here. A module whose verb has sub-verbs (``data inspect``)
adds its own subparsers in ``add_arguments``. Heavy imports stay inside ``run`` so `tuneforge
--help` is fast.
"""

from __future__ import annotations

from tuneforge.registry import Interface, Registry, optional


class CommandModule(Interface):
    """A module of `tuneforge.commands`: one verb, named by its file."""

    HELP: str  # one line for `tuneforge --help`

    def add_arguments(parser) -> None:
        """Add the verb's arguments to its `argparse` subparser."""

    def run(args) -> int:
        """Carry out the verb; returns the exit code."""

    # False for a verb that prints text only: no transformers / datasets logging set-up, no import
    # of them (`tuneforge.console.quiet_libraries`)
    SETUP_LOGGING: bool = True

    @optional
    def start_process(argv: list[str], fresh_process: bool) -> None:
        """The verb's start-up step, before argparse and any heavy import (``train``: huge pages, the
        allocator and the CPU threads); ``fresh_process`` is False when `tuneforge.cli.main` runs
        inside another program."""

    @optional
    def interrupted(args) -> str:
        """What is true after Ctrl-C stopped ``run(args)``, in a line for stderr ("" says nothing):
        ``train``: how to resume; without the hook, "interrupted"."""

    helpers = (
        "EPILOG",  # used inside their module only: to become private there
        "WHAT",
        "list_entries",
    )


COMMANDS = Registry("commands", "tuneforge.commands", interface=CommandModule)
