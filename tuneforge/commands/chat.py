"""`tuneforge chat MODEL_OR_RUN [--prompt ...]`: talk to a trained run, or to a model to compare
with (see tuneforge.inference.chat)."""

from __future__ import annotations

import argparse

HELP = "chat with a trained run or a model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model_or_run",
        metavar="MODEL_OR_RUN",
        help="a finished run folder, or a model: an HF folder, a .gguf file, package:PKG/FILE.gguf or a hub id",
    )
    p.add_argument("--prompt", help="answer this one prompt and exit")
    p.add_argument("--system", help="system message")
    p.add_argument(
        "--template",
        help="chat template for a model (default: its tokenizer's own; see `tuneforge ls templates`); "
        "a run always uses the template it trained with",
    )
    p.add_argument("--max-new-tokens", type=int, default=256, help="the most tokens an answer may have")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default); above 0 samples")
    p.add_argument("--top-p", type=float, default=1.0, help="when sampling: keep the top tokens of this mass")
    p.add_argument("--seed", type=int, help="when sampling: the same seed draws the same answer")
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run the model's own Python code (its auto_map); a run's config.yaml alone never does",
    )


def run(args: argparse.Namespace) -> int:
    from tuneforge.errors import ConfigError
    from tuneforge.inference.chat import chat
    from tuneforge.inference.generate import Sampling

    if args.max_new_tokens < 1:
        raise ConfigError(f"--max-new-tokens {args.max_new_tokens}: use 1 or more, e.g. 256")
    sampling = Sampling(args.temperature, args.top_p, args.seed)  # checked before anything loads
    return chat(
        args.model_or_run,
        args.prompt,
        args.system,
        args.max_new_tokens,
        sampling,
        template=args.template,
        trust_remote_code=args.trust_remote_code,
    )


def start_process(argv: list[str], fresh_process: bool = True) -> None:
    """Before the model loads: PyTorch's CPU threads (`tuneforge.threads`)."""
    from tuneforge.threads import start

    start(argv, fresh_process)


def interrupted(args: argparse.Namespace) -> str:
    """Ctrl-C: nothing to say (as at the prompt); the interrupted line is ended."""
    return ""
