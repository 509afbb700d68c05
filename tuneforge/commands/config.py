"""`tuneforge config reference|schema`: the config reference (Markdown) or its JSON schema."""

from __future__ import annotations

import argparse

# prints text only: no logging set-up, no transformers import
SETUP_LOGGING = False
HELP = "config tools (reference, schema)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="config_verb", required=True)
    sub.add_parser("reference", help="print the config reference (Markdown)")
    sub.add_parser("schema", help="print the JSON schema")


def run(args: argparse.Namespace) -> int:
    from tuneforge.config.reference import json_schema, reference_text

    print(reference_text() if args.config_verb == "reference" else json_schema())
    return 0
