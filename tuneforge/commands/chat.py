"""`tuneforge chat RUN_DIR [--prompt ...]`: talk to a trained run (see tuneforge.chat)."""

from __future__ import annotations

import argparse

HELP = "chat with a trained run"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir")
    p.add_argument("--prompt", help="answer this one prompt and exit")
    p.add_argument("--system", help="system message")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")


def run(args: argparse.Namespace) -> int:
    from tuneforge.chat import chat

    return chat(args.run_dir, args.prompt, args.system, args.max_new_tokens, args.temperature)
