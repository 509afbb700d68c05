"""`tuneforge ls methods|stages|formats|templates|commands|tasks|recipes`: what each registry holds;
`tuneforge ls methods --model PATH` adds each method's trainable share of that model;
`tuneforge ls runs [--dir DIR]`: the run folders under DIR and where each stands (`tuneforge.runs.listing`)."""

from __future__ import annotations

import argparse

# prints text only: no logging set-up, no transformers import
SETUP_LOGGING = False
HELP = "list registered methods, stages, formats, templates, commands, eval tasks or data recipes, or the run folders"
WHAT = ["methods", "stages", "formats", "templates", "commands", "tasks", "recipes", "runs"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=WHAT)
    p.add_argument(
        "--model",
        metavar="PATH",
        help="with 'methods': load this model (HF folder, .gguf, package:...) and show how many of its "
        "parameters each method trains with its default settings",
    )
    p.add_argument("--dir", metavar="DIR", help="with 'runs': the folder to look in (default: runs)")
    p.add_argument(
        "--markdown",
        action="store_true",
        help="with 'methods': what each method supports (quantized base, merge, multi-adapter), the table "
        "in docs/methods.md; with 'stages': the speed switches each stage takes, the table in docs/speed.md",
    )


def run(args: argparse.Namespace) -> int:
    if args.what == "runs" or args.dir is not None:
        return _runs(args)
    if args.model and args.what != "methods":
        from tuneforge.errors import ConfigError

        raise ConfigError(f"--model only applies to 'ls methods', not 'ls {args.what}'")
    if args.markdown:
        if args.what not in ("methods", "stages") or args.model:
            from tuneforge.errors import ConfigError

            raise ConfigError("--markdown only applies to 'ls methods' and 'ls stages' (without --model)")
        if args.what == "methods":
            from tuneforge.methods import supports_table

            print(supports_table())
        else:
            from tuneforge.speed.support import support_table
            from tuneforge.stages import STAGES

            print(support_table(STAGES))
        return 0
    print(list_entries(args.what, args.model))
    return 0


def list_entries(what: str, model: str | None = None) -> str:
    if what == "methods":
        from tuneforge.methods import METHODS as reg
    elif what == "stages":
        from tuneforge.stages import STAGES as reg
    elif what == "formats":
        from tuneforge.data.formats import FORMATS as reg
    elif what == "commands":
        from tuneforge.commands import COMMANDS as reg
    elif what == "tasks":
        from tuneforge.eval.tasks import TASKS as reg
    elif what == "recipes":
        from tuneforge.generate.recipes import RECIPES as reg
    else:
        from tuneforge.data.templates import TEMPLATES as reg
    from tuneforge.models.wrap import method_shares

    shares = method_shares(model) if model and what == "methods" else {}
    width = max((len(v) for v in shares.values() if not v.startswith("n/a")), default=0)
    lines = []
    name_width = max(len(n) for n in reg.names())
    for name in reg.names():
        mod = reg.get(name)
        desc = reg.hook(mod, "HELP" if what == "commands" else "DESCRIPTION")
        extra = ""
        supports = reg.hook(mod, "SUPPORTS") if what == "methods" else None
        if supports:
            extra = (
                "  [" + ", ".join(k for k, v in supports.items() if v) + "]" if any(supports.values()) else ""
            )
        share = f"{shares[name]:<{width}}  " if shares else ""
        lines.append(f"{name:<{name_width}}  {share}{desc}{extra}")
    if shares:
        lines.insert(0, f"trainable parameters on {model} with each method's defaults:")
    return "\n".join(lines)


def _runs(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tuneforge.errors import ConfigError

    if args.what != "runs" or args.model or args.markdown:
        raise ConfigError("--dir only applies to 'ls runs', and 'ls runs' takes only --dir")
    from tuneforge.runs.listing import format_runs, list_runs

    root = Path(args.dir or "runs")
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder; give the folder your runs are in with --dir")
    print(format_runs(list_runs(root), root))
    return 0
