"""Step 8 of a run: the trained weights, tokenizer, chat template and manifest written into the run
folder (the manifest last: its presence marks a finished run)."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import shutil
from pathlib import Path

from tuneforge.artifacts.folder import atomic_write

PACKAGES = ("tuneforge", "torch", "transformers", "peft", "trl", "datasets", "accelerate", "bitsandbytes")


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def save_run(
    run_dir: Path, model, tokenizer, chat_template: str | None, stop_tokens, manifest: dict, method_cfg=None
) -> None:
    """Write the trained weights, tokenizer, template and manifest (the manifest last: its presence
    marks a finished run). ``method_cfg`` lets the method save its own adapter or final model. A
    full disk stops with a one-line TrainingError (the last checkpoint still holds the run)."""
    from tuneforge.training.checkpoints import is_no_space, no_space_error

    try:
        _save_run(run_dir, model, tokenizer, chat_template, stop_tokens, manifest, method_cfg)
    except Exception as e:
        if not is_no_space(e):
            raise
        raise no_space_error(run_dir, "the trained model, tokenizer and manifest") from e


def _save_run(
    run_dir: Path, model, tokenizer, chat_template, stop_tokens, manifest: dict, method_cfg
) -> None:
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
    atomic_write(run_dir / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False, default=str))


def whole_run_train_loss(log_history: list[dict]) -> float | None:
    """The mean training loss over every logged step of the run, resumed sessions included (the
    Trainer's own ``train_loss`` covers only the steps of its last ``train()`` call).

    Each logged ``loss`` is the mean over the steps since the previous log, so it is weighted by
    the steps it covers. A resumed run's log comes back from the checkpoint, so it holds every
    session's entries (a step logged twice counts once, with its later entry). Steps after the
    last logged one are not in the log, and so not in this mean."""
    by_step: dict[int, float] = {}
    for i, entry in enumerate(log_history):
        if "loss" in entry and isinstance(entry["loss"], int | float):
            by_step[int(entry.get("step", i + 1))] = float(entry["loss"])
    total = covered = 0.0
    previous = 0
    for step in sorted(by_step):
        steps = max(step - previous, 1)
        total += by_step[step] * steps
        covered += steps
        previous = step
    return total / covered if covered else None
