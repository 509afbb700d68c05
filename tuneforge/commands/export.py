"""`tuneforge export RUN_DIR --merge OUT_DIR | --gguf OUT.gguf [--quant q8_0] | --ollama DIR`: artifacts
that plain transformers, llama.cpp and Ollama load, each checked after writing (see tuneforge.export)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

HELP = "export a trained run (merged HF folder, GGUF, Ollama Modelfile)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from tuneforge.export.targets import QUANTS

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
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run the model's own Python code (its auto_map); a run's config.yaml alone never does",
    )


def run(args: argparse.Namespace) -> int:
    from tuneforge.errors import ConfigError

    if not (args.merge or args.gguf or args.ollama):
        raise ConfigError(
            "tuneforge export: say what to write: --merge OUT_DIR, --gguf OUT.gguf or --ollama DIR"
        )
    from tuneforge.export.targets import check_file, check_folder

    gguf_path = _gguf_path(args)
    # every target is checked before the first export starts: nothing a user keeps is replaced
    if args.merge:
        check_folder(Path(args.merge), "--merge")
    if gguf_path:
        check_file(Path(gguf_path), "--gguf" if args.gguf else "--ollama", "gguf")
    if args.ollama:
        check_file(Path(args.ollama) / "Modelfile", "--ollama", "modelfile")
    check = not args.no_check_stop
    args.started, args.done = time.time(), []  # what `interrupted` reports
    if args.merge:
        from tuneforge.export import export_merged

        info = export_merged(
            args.run_dir, args.merge, check_stop=check, trust_remote_code=args.trust_remote_code
        )
        print(
            f"merged model written to {info['out']}: reloaded with plain transformers, max logit "
            f"difference {info['max_logit_diff']:.2e}, stops at its end-of-turn token: {info['stops']}"
        )
        args.done.append(args.merge)
    if gguf_path:
        from tuneforge.export.gguf import export_gguf

        info = export_gguf(
            args.run_dir, gguf_path, args.quant, check_stop=check, trust_remote_code=args.trust_remote_code
        )
        types = ", ".join(f"{n} {k}" for k, n in sorted(info["tensor_types"].items()))
        print(
            f"GGUF written to {info['out']} ({info['size_mb']} MB; tensors: {types}): reloaded with "
            f"transformers, max logit difference {info['max_logit_diff']:.2e}, same greedy answers as the "
            f"run on {info['same_greedy_answers']} probe prompts, stops at its end-of-turn token on "
            f"{info['stops']}"
        )
        args.done.append(gguf_path)
        if args.ollama:
            from tuneforge.export.ollama import write_modelfile

            run = info["run"]
            path = write_modelfile(
                Path(args.ollama), Path(gguf_path), run.chat_template, run.stop_tokens, run.tokenizer
            )
            print(f"Ollama Modelfile written to {path}; create the model with: ollama create NAME -f {path}")
            args.done.append(str(Path(args.ollama) / "Modelfile"))
    return 0


def _gguf_path(args: argparse.Namespace) -> str | None:
    return args.gguf or (str(Path(args.ollama) / f"model-{args.quant}.gguf") if args.ollama else None)


def interrupted(args: argparse.Namespace) -> str:
    """Ctrl-C: each target as it is now. An export writes TARGET.tmp and renames it over TARGET
    when complete, then checks it (tuneforge.export), so a TARGET.tmp left is partial: removed here."""
    import shutil

    if not hasattr(args, "done"):  # stopped before anything was written
        return "export interrupted; nothing was written"
    targets = [args.merge, _gguf_path(args), str(Path(args.ollama) / "Modelfile") if args.ollama else None]
    said = []
    for target in filter(None, targets):
        path, tmp = Path(target), Path(target + ".tmp")
        if target in args.done:
            state = "finished"
        elif path.exists() and path.stat().st_mtime >= args.started:
            state = "written but not checked (export again to check it)"
        else:
            state = "left as it was" if path.exists() else "not written"
        if tmp.exists():
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
            state += f"; the partial {tmp.name} was removed"
        said.append(f"{target} {state}")
    return "export interrupted: " + "; ".join(said)
