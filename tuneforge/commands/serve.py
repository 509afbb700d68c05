"""`tuneforge serve MODEL_OR_RUN [--adapter NAME=RUN_DIR ...]`: an OpenAI-compatible HTTP server
(see tuneforge.serve)."""

from __future__ import annotations

import argparse
import os

HELP = "serve a run or model over an OpenAI-compatible HTTP API"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model_or_run", help="a finished run folder, an HF model folder, a .gguf file or package:..."
    )
    p.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="NAME=RUN_DIR",
        help="another LoRA run over the same base, served as model NAME (repeatable)",
    )
    p.add_argument("--name", help="model id for MODEL_OR_RUN (default: its folder or file name)")
    p.add_argument(
        "--template", help="chat template for a model that has none (see `tuneforge ls templates`)"
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--api-key",
        default=os.environ.get("TUNEFORGE_API_KEY"),
        help="require 'Authorization: Bearer KEY' (default: $TUNEFORGE_API_KEY; none = no key)",
    )
    p.add_argument(
        "--backend",
        choices=["auto", "transformers", "vllm"],
        default="auto",
        help="auto = vllm where installed with a CUDA GPU, else transformers",
    )
    p.add_argument("--max-concurrency", type=int, default=1, help="generations running at once")
    p.add_argument("--max-queue", type=int, default=8, help="requests waiting; beyond that 429 + Retry-After")
    p.add_argument("--max-tokens", type=int, default=1024, help="the most tokens one request may generate")
    p.add_argument("--max-request-bytes", type=int, default=1_000_000, help="larger bodies get 413")
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run the model's own Python code (its auto_map); a run's config.yaml alone never does",
    )


def run(args: argparse.Namespace) -> int:
    from tuneforge.errors import ConfigError
    from tuneforge.extras import require

    require("tuneforge serve", "starlette", "uvicorn")
    from tuneforge.serve import Limits, build_catalog, serve

    for flag in ("max_concurrency", "max_queue", "max_tokens", "max_request_bytes"):
        if getattr(args, flag) < (0 if flag == "max_queue" else 1):
            raise ConfigError(f"--{flag.replace('_', '-')} must be a positive number")
    catalog = build_catalog(
        args.model_or_run,
        args.adapter,
        name=args.name,
        template=args.template,
        trust_remote_code=args.trust_remote_code,
    )
    limits = Limits(
        max_tokens=args.max_tokens, max_request_bytes=args.max_request_bytes, api_key=args.api_key
    )
    serve(
        catalog,
        host=args.host,
        port=args.port,
        backend=args.backend,
        limits=limits,
        max_concurrency=args.max_concurrency,
        max_queue=args.max_queue,
    )
    return 0


def start_process(argv: list[str], fresh_process: bool = True) -> None:
    """Before the model loads: PyTorch's CPU threads (`tuneforge.threads`)."""
    from tuneforge.threads import start

    start(argv, fresh_process)


def interrupted(args: argparse.Namespace) -> str:
    """Ctrl-C: uvicorn has shut the server down."""
    return "stopped"
