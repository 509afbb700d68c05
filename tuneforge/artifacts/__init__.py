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

A run folder may come from someone else, so its config's model.trust_remote_code never turns on the
model's own code: ``read_run`` / ``load_run`` take the command's ``--trust-remote-code`` instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from tuneforge.config.load import validate
from tuneforge.config.schema import Config
from tuneforge.errors import ModelError


@dataclass
class LoadedRun:
    model: object
    tokenizer: object
    config: Config
    manifest: dict
    chat_template: str | None
    stop_tokens: tuple[str, ...]


def read_run(run_dir: str | Path, *, trust_remote_code: bool = False) -> tuple[Config, dict]:
    """The run's config and manifest; ``trust_remote_code`` (the command's flag) replaces the config's
    value, and a config that sets it without the flag is refused (`check_remote_code`)."""
    from tuneforge.models.load import check_remote_code

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
    cfg = validate(raw, source=str(run_dir / "config.yaml"), run_folder=True)
    check_remote_code(cfg.model.trust_remote_code, trust_remote_code, str(run_dir / "config.yaml"))
    cfg.model.trust_remote_code = trust_remote_code
    return cfg, manifest


def load_run(run_dir: str | Path, *, base_only: bool = False, trust_remote_code: bool = False) -> LoadedRun:
    """Load a finished run's model (base + adapter, or the full weights) and its tokenizer; the
    model's own code runs only with ``trust_remote_code`` (see `read_run`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuneforge.models.load import check_weight_files, load_model

    run_dir = Path(run_dir)
    cfg, manifest = read_run(run_dir, trust_remote_code=trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "tokenizer", trust_remote_code=trust_remote_code)
    if manifest["artifact"] in ("adapter", "method_adapter") or base_only:
        model = load_model(cfg.model, cfg.method)
        check_weight_files(run_dir / "adapter")
        if manifest["artifact"] == "method_adapter" and not base_only:
            from tuneforge.methods import load_method_adapter

            model = load_method_adapter(model, cfg.method, run_dir / "adapter")
        elif not base_only:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, run_dir / "adapter")
    else:
        check_weight_files(run_dir / "model")
        model = AutoModelForCausalLM.from_pretrained(run_dir / "model", trust_remote_code=trust_remote_code)
    model.eval()
    return LoadedRun(
        model, tokenizer, cfg, manifest, tokenizer.chat_template, tuple(manifest.get("stop_tokens", ()))
    )
