"""CLI verbs, one module per name users type after `tuneforge` (train, data, chat, export, ls, ...).

Each module defines ``HELP`` (one line for `tuneforge --help`), ``add_arguments(parser)`` and
``run(args) -> int`` (the exit code). `tuneforge.cli` builds the parser from this registry, so
adding a verb is one file here. A module whose verb has sub-verbs (``data inspect``) adds its own
subparsers in ``add_arguments``. Heavy imports stay inside ``run`` so `tuneforge --help` is fast.
"""

from tuneforge.registry import Registry

COMMANDS = Registry("commands", "tuneforge.commands")
