"""Step 8 of a run and its reverse: the run folder's layout, saving what training produced, and
loading a finished run back (for chat, export, eval).

    RUN_DIR/config.yaml         the resolved config
    RUN_DIR/manifest.json       versions, base model, data hash and size, final metrics
    RUN_DIR/adapter/            PEFT adapter (lora, qlora, ...) - loads with plain peft; or, for methods
                                PEFT lacks (adapter, mam, unipelt), their own trained tensors + config
    RUN_DIR/model/              full weights (full, freeze) - loads with plain transformers
    RUN_DIR/tokenizer/          tokenizer with the chat template used in training
    RUN_DIR/chat_template.jinja that template, for other tools
    RUN_DIR/checkpoint-N/       resumable checkpoints; RUN_DIR/logs/ TensorBoard; loss.png
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from tuneforge.config.load import validate
from tuneforge.config.schema import Config
from tuneforge.errors import ConfigError, ModelError

PACKAGES = ("tuneforge", "torch", "transformers", "peft", "trl", "datasets", "accelerate", "bitsandbytes")


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def check_run_dir(cfg: Config) -> Path:
    """Refuse to silently overwrite a finished run or restart over existing checkpoints."""
    from tuneforge.trainer import latest_checkpoint

    run_dir = Path(cfg.output.dir)
    if cfg.train.resume_from_checkpoint:
        return run_dir
    if (run_dir / "manifest.json").is_file() and not cfg.output.overwrite:
        raise ConfigError(
            f"output.dir {run_dir} already holds a finished run; set output.overwrite=true to replace "
            "it, or choose another output.dir"
        )
    if latest_checkpoint(run_dir) and not cfg.output.overwrite:
        raise ConfigError(
            f"output.dir {run_dir} has checkpoints from an unfinished run; continue it with "
            "train.resume_from_checkpoint=auto, or set output.overwrite=true to start over"
        )
    if cfg.output.overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    return run_dir


def write_config(cfg: Config, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(
        run_dir / "config.yaml",
        yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True),
    )


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_run(
    run_dir: Path, model, tokenizer, chat_template: str | None, stop_tokens, manifest: dict, method_cfg=None
) -> None:
    """Write the trained weights, tokenizer, template and manifest (the manifest last: its presence
    marks a finished run). ``method_cfg`` lets the method save its own adapter or final model."""
    from peft import PeftModel

    from tuneforge.methods import final_model, has_own_adapter, save_method_adapter

    model = final_model(model, method_cfg) if method_cfg is not None else model
    own = method_cfg is not None and has_own_adapter(method_cfg)
    kind = "method_adapter" if own else "adapter" if isinstance(model, PeftModel) else "model"
    target = run_dir / ("adapter" if own else kind)
    tmp = run_dir / f".{target.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    if own:
        save_method_adapter(model, method_cfg, tmp)
    elif kind == "adapter":
        from tuneforge.methods._lora_common import save_weights

        save_weights(model, tmp)  # converts PiSSA/OLoRA adapters for the original base
    else:
        model.save_pretrained(tmp, safe_serialization=True)
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    if chat_template:
        tokenizer.chat_template = chat_template
        (run_dir / "chat_template.jinja").write_text(chat_template, encoding="utf-8")
    tokenizer.save_pretrained(run_dir / "tokenizer")
    manifest = {
        "artifact": kind,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
        "stop_tokens": list(stop_tokens),
        **manifest,
    }
    _atomic_write(run_dir / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False, default=str))


@dataclass
class LoadedRun:
    model: object
    tokenizer: object
    config: Config
    manifest: dict
    chat_template: str | None
    stop_tokens: tuple[str, ...]


def read_run(run_dir: str | Path) -> tuple[Config, dict]:
    run_dir = Path(run_dir)
    if not (run_dir / "manifest.json").is_file():
        hint = (
            " (training has not finished; resume it with train.resume_from_checkpoint=auto)"
            if (run_dir / "config.yaml").is_file()
            else ""
        )
        raise ModelError(f"{run_dir} is not a finished tuneforge run: manifest.json is missing{hint}")
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    raw = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    return validate(raw, source=str(run_dir / "config.yaml")), manifest


def load_run(run_dir: str | Path, *, base_only: bool = False) -> LoadedRun:
    """Load a finished run's model (base + adapter, or the full weights) and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuneforge.models.load import load_model

    run_dir = Path(run_dir)
    cfg, manifest = read_run(run_dir)
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "tokenizer")
    if manifest["artifact"] in ("adapter", "method_adapter") or base_only:
        model = load_model(cfg.model, cfg.method)
        if manifest["artifact"] == "method_adapter" and not base_only:
            from tuneforge.methods import load_method_adapter

            model = load_method_adapter(model, cfg.method, run_dir / "adapter")
        elif not base_only:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, run_dir / "adapter")
    else:
        model = AutoModelForCausalLM.from_pretrained(run_dir / "model")
    model.eval()
    return LoadedRun(
        model, tokenizer, cfg, manifest, tokenizer.chat_template, tuple(manifest.get("stop_tokens", ()))
    )
