"""`tuneforge ls methods|stages|formats|templates|commands|tasks`: what each registry holds;
`tuneforge ls methods --model PATH` adds each method's trainable share of that model."""

from __future__ import annotations

import argparse

# prints text only: no logging set-up, no transformers import
SETUP_LOGGING = False
HELP = "list registered methods, stages, formats, templates, commands or eval tasks"
WHAT = ["methods", "stages", "formats", "templates", "commands", "tasks"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=WHAT)
    p.add_argument(
        "--model",
        metavar="PATH",
        help="with 'methods': load this model (HF folder, .gguf, package:...) and show how many of its "
        "parameters each method trains with its default settings",
    )
    p.add_argument(
        "--markdown",
        action="store_true",
        help="with 'methods': print what each method supports (quantized base, merge, multi-adapter) "
        "as the markdown table in docs/methods.md",
    )


def run(args: argparse.Namespace) -> int:
    from tuneforge.catalog import list_entries

    if args.model and args.what != "methods":
        from tuneforge.errors import ConfigError

        raise ConfigError(f"--model only applies to 'ls methods', not 'ls {args.what}'")
    if args.markdown:
        if args.what != "methods" or args.model:
            from tuneforge.errors import ConfigError

            raise ConfigError("--markdown only applies to 'ls methods' (without --model)")
        from tuneforge.catalog import supports_table

        print(supports_table())
        return 0
    print(list_entries(args.what, args.model))
    return 0
