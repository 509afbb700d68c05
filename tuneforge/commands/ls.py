"""`tuneforge ls methods|stages|formats|templates|commands|tasks`: what each registry holds."""

from __future__ import annotations

import argparse

# prints text only: no logging set-up, no transformers import
SETUP_LOGGING = False
HELP = "list registered methods, stages, formats, templates, commands or eval tasks"
WHAT = ["methods", "stages", "formats", "templates", "commands", "tasks"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=WHAT)


def run(args: argparse.Namespace) -> int:
    from tuneforge.catalog import list_entries

    print(list_entries(args.what))
    return 0
