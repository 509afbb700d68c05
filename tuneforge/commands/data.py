"""`tuneforge data inspect CONFIG.yaml`: rendered samples with trained tokens marked, and statistics;
`tuneforge data generate RECIPE.yaml [key=value ...]`: synthetic training data from a teacher
(`tuneforge.generate`)."""

from __future__ import annotations

import argparse

from tuneforge.commands._config import add_trust_flag, load_command_config

HELP = "data tools (inspect, generate)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="data_verb", required=True)
    di = sub.add_parser("inspect", help="show rendered samples with trained tokens marked, and statistics")
    di.add_argument("config")
    di.add_argument("overrides", nargs="*")
    di.add_argument("-n", "--num-samples", type=int, default=3)
    di.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    add_trust_flag(di)
    dg = sub.add_parser("generate", help="generate training data with a teacher model from a recipe file")
    dg.add_argument("recipe", help="recipe YAML (see docs/generate.md)")
    dg.add_argument("overrides", nargs="*", help="key=value overrides, e.g. recipe.limit=20")


def run(args: argparse.Namespace) -> int:
    if args.data_verb == "generate":
        return _generate(args)
    from tuneforge.data.inspect import inspect_data

    color = {"auto": None, "always": True, "never": False}[args.color]
    print(inspect_data(load_command_config(args), args.num_samples, color))
    return 0


def _generate(args: argparse.Namespace) -> int:
    from tuneforge.generate.run import generate, load_recipe

    stats = generate(load_recipe(args.recipe, args.overrides))
    dropped = (
        ", ".join(f"{r} {n}" for r, n in sorted(stats["dropped"].items(), key=lambda x: -x[1])) or "none"
    )
    t = stats["teacher"]
    print(
        f"generated {stats['generated']}, kept {stats['kept']} (dropped: {dropped})\n"
        f"teacher: {t['calls']} calls ({t['cached']} cached, {t['failed']} failed, {t['retries']} retries), "
        f"{t['prompt_tokens']} + {t['completion_tokens']} tokens\n"
        f"written: {stats['written']['data']} (card {stats['written']['card']})"
        + (
            f"; registry entry {stats['name']!r} in {stats['written']['registry']}"
            if "registry" in stats["written"]
            else ""
        )
    )
    return 0
