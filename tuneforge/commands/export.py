"""`tuneforge export RUN_DIR --merge OUT_DIR | --gguf OUT.gguf [--quant q8_0] | --ollama DIR`: artifacts
that plain transformers, llama.cpp and Ollama load, each checked after writing (see tuneforge.export)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "export a trained run (merged HF folder, GGUF, Ollama Modelfile)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from tuneforge.export.gguf import QUANTS

    p.add_argument("run_dir")
    p.add_argument("--merge", metavar="OUT_DIR", help="write a merged HF model folder (with a model card)")
    p.add_argument("--gguf", metavar="OUT.gguf", help="write one GGUF file (Llama and Qwen2 architectures)")
    p.add_argument("--quant", default="f16", choices=QUANTS, help="GGUF tensor type (default f16)")
    p.add_argument(
        "--ollama",
        metavar="DIR",
        help="write DIR/Modelfile for the GGUF (written to DIR/model-QUANT.gguf when --gguf is not given)",
    )
    p.add_argument("--no-check-stop", action="store_true", help="skip the check that generation stops")


def run(args: argparse.Namespace) -> int:
    from tuneforge.errors import ConfigError

    if not (args.merge or args.gguf or args.ollama):
        raise ConfigError(
            "tuneforge export: say what to write: --merge OUT_DIR, --gguf OUT.gguf or --ollama DIR"
        )
    check = not args.no_check_stop
    if args.merge:
        from tuneforge.export import export_merged

        info = export_merged(args.run_dir, args.merge, check_stop=check)
        print(
            f"merged model written to {info['out']}: reloaded with plain transformers, max logit "
            f"difference {info['max_logit_diff']:.2e}, stops at its end-of-turn token: {info['stops']}"
        )
    gguf_path = args.gguf or (str(Path(args.ollama) / f"model-{args.quant}.gguf") if args.ollama else None)
    if gguf_path:
        from tuneforge.export.gguf import export_gguf

        info = export_gguf(args.run_dir, gguf_path, args.quant, check_stop=check)
        types = ", ".join(f"{n} {k}" for k, n in sorted(info["tensor_types"].items()))
        print(
            f"GGUF written to {info['out']} ({info['size_mb']} MB; tensors: {types}): reloaded with "
            f"transformers, max logit difference {info['max_logit_diff']:.2e}, same greedy answers as the "
            f"run on {info['same_greedy_answers']} probe prompts, stops at its end-of-turn token on "
            f"{info['stops']}"
        )
        if args.ollama:
            from tuneforge.export.ollama import write_modelfile

            run = info["run"]
            path = write_modelfile(
                Path(args.ollama), Path(gguf_path), run.chat_template, run.stop_tokens, run.tokenizer
            )
            print(f"Ollama Modelfile written to {path}; create the model with: ollama create NAME -f {path}")
    return 0
