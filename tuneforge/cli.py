"""`tuneforge <verb> ...`: the thin command line over train, data inspect, chat, export, ls and
config. Every user error is one line on stderr (`error: ...`) with exit code 2."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from tuneforge.errors import TuneforgeError

EPILOG = "Overrides are dotted keys: train.learning_rate=2e-4 method.r=16 data.datasets.0.path=x.json"


def _config_help() -> str:
    from tuneforge.config.reference import reference_text

    return reference_text()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tuneforge", description="Fine-tune, inspect, chat with and export models.")
    sub = p.add_subparsers(dest="verb", required=True)

    wants_help = "train" in sys.argv[1:2] and ({"-h", "--help"} & set(sys.argv))
    epilog = EPILOG + ("\n\n" + _config_help() if wants_help else "")
    t = sub.add_parser("train", help="train from a YAML config", epilog=epilog,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("config", help="YAML config file")
    t.add_argument("overrides", nargs="*", help="key=value overrides")
    t.add_argument("--help-config", action="store_true", help="print every config key with its description")

    d = sub.add_parser("data", help="data tools")
    dsub = d.add_subparsers(dest="data_verb", required=True)
    di = dsub.add_parser("inspect", help="show rendered samples with trained tokens marked, and statistics")
    di.add_argument("config")
    di.add_argument("overrides", nargs="*")
    di.add_argument("-n", "--num-samples", type=int, default=3)
    di.add_argument("--color", choices=["auto", "always", "never"], default="auto")

    c = sub.add_parser("chat", help="chat with a trained run")
    c.add_argument("run_dir")
    c.add_argument("--prompt", help="answer this one prompt and exit")
    c.add_argument("--system", help="system message")
    c.add_argument("--max-new-tokens", type=int, default=256)
    c.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")

    e = sub.add_parser("export", help="export a trained run")
    e.add_argument("run_dir")
    e.add_argument("--merge", metavar="OUT_DIR", required=True, help="write a merged HF model folder")
    e.add_argument("--no-check-stop", action="store_true", help="skip the check that generation stops")

    ls = sub.add_parser("ls", help="list registered methods, stages, formats or templates")
    ls.add_argument("what", choices=["methods", "stages", "formats", "templates"])

    cfg = sub.add_parser("config", help="config tools")
    csub = cfg.add_subparsers(dest="config_verb", required=True)
    csub.add_parser("reference", help="print the config reference (Markdown)")
    csub.add_parser("schema", help="print the JSON schema")
    return p


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.logging.set_verbosity_warning()


def run(argv: list[str]) -> int:
    if argv[:1] == ["train"] and "--help-config" in argv:
        print(_config_help())
        return 0
    args = build_parser().parse_args(argv)
    if args.verb == "ls":
        from tuneforge.catalog import list_entries

        print(list_entries(args.what))
        return 0
    if args.verb == "config":
        from tuneforge.config.reference import json_schema, reference_text

        print(reference_text() if args.config_verb == "reference" else json_schema())
        return 0
    _setup_logging()
    if args.verb == "train":
        from tuneforge.config import load_config
        from tuneforge.train import run_training

        run_dir = run_training(load_config(args.config, args.overrides))
        print(f"\nrun saved in {run_dir}\nchat with it:  tuneforge chat {run_dir}")
        return 0
    if args.verb == "data":
        from tuneforge.config import load_config
        from tuneforge.inspect_data import inspect_data

        color = {"auto": None, "always": True, "never": False}[args.color]
        print(inspect_data(load_config(args.config, args.overrides), args.num_samples, color))
        return 0
    if args.verb == "chat":
        from tuneforge.chat import chat

        return chat(args.run_dir, args.prompt, args.system, args.max_new_tokens, args.temperature)
    if args.verb == "export":
        from tuneforge.export import export_merged

        info = export_merged(args.run_dir, args.merge, check_stop=not args.no_check_stop)
        print(f"merged model written to {info['out']}: reloaded with plain transformers, max logit "
              f"difference {info['max_logit_diff']:.2e}, stops at its end-of-turn token: {info['stops']}")
        return 0
    return 2


def main(argv: list[str] | None = None) -> None:
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
