"""`tuneforge export RUN_DIR --merge OUT_DIR`: a merged model that plain transformers loads.

LoRA-family, VeRA, IA3 and AdaLoRA adapters are merged (QLoRA/LoftQ into a dequantized base);
prompt-learning adapters and our own added modules are refused with the reason; the tokenizer,
chat template, a generation config whose eos ids are the template's stop tokens and a model card
(README.md) go alongside. The export is then checked: reloaded with plain transformers, its logits
must match the run's model, and generation must stop at the end-of-turn token.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from tuneforge.artifacts import load_run, read_run
from tuneforge.errors import ModelError, TuneforgeError
from tuneforge.inference.generate import generate_answers, prompt_ids, stop_token_ids


class ExportCheckFailed(TuneforgeError):
    pass


TOLERANCE = {"float32": 1e-3, "bfloat16": 2e-2, "float16": 1e-2}  # max |logit diff| merged vs adapter


def probe_conversations() -> list[list[dict]]:
    """The prompts every export is checked with (short, so the checks stay fast)."""
    return [
        [{"role": "user", "content": "Who are you?"}],
        [{"role": "user", "content": "What is 12 + 30?"}],
        [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name a colour."}],
    ]


def merged_model(run):
    """The run's model as one plain transformers model (adapters merged), ready to save."""
    from peft import PeftModel

    from tuneforge.models.merge import merge_adapter

    return merge_adapter(run.model) if isinstance(run.model, PeftModel) else run.model


def export_merged(
    run_dir: str,
    out_dir: str,
    *,
    tolerance: float | None = None,
    check_stop: bool = True,
    trust_remote_code: bool = False,
) -> dict:
    """``trust_remote_code`` is the command's flag: the run's config.yaml alone never enables it."""
    from transformers import AutoModelForCausalLM, GenerationConfig

    from tuneforge.export.card import model_card
    from tuneforge.export.targets import EXPORT_MARK, check_folder

    out = Path(out_dir)
    check_folder(out, "--merge")
    check_mergeable(run_dir, trust_remote_code=trust_remote_code)  # before loading anything
    run = load_run(run_dir, trust_remote_code=trust_remote_code)
    probe = [{"role": "user", "content": "Who are you?"}]
    ids = torch.tensor([prompt_ids(run.tokenizer, probe, run.chat_template)])
    with torch.no_grad():
        reference = run.model(input_ids=ids.to(run.model.device)).logits.float().cpu()
    dtype = str(next(run.model.parameters()).dtype).removeprefix("torch.")
    tolerance = tolerance if tolerance is not None else TOLERANCE.get(dtype, 1e-3)

    merged = merged_model(run)
    stops = stop_token_ids(run.tokenizer, run.stop_tokens)
    merged.generation_config = GenerationConfig.from_model_config(merged.config)
    merged.generation_config.eos_token_id = stops
    merged.generation_config.pad_token_id = run.tokenizer.pad_token_id

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp, safe_serialization=True, max_shard_size="2GB")
    run.tokenizer.save_pretrained(tmp)
    if run.chat_template:
        (tmp / "chat_template.jinja").write_text(run.chat_template, encoding="utf-8")
    (tmp / "README.md").write_text(model_card(run, run_dir), encoding="utf-8")
    (tmp / EXPORT_MARK).write_text(
        json.dumps(
            {
                "source_run": str(Path(run_dir).resolve()),
                "base_model": run.manifest.get("base_model"),
                "method": run.manifest.get("method"),
                "stop_tokens": list(run.stop_tokens),
            },
            indent=2,
        )
    )
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)

    # the checks use only plain transformers, as a user without tuneforge would
    reloaded = AutoModelForCausalLM.from_pretrained(out, trust_remote_code=trust_remote_code)
    reloaded.eval()
    with torch.no_grad():
        diff = (reloaded(input_ids=ids).logits.float() - reference).abs().max().item()
    if diff > tolerance:
        raise ExportCheckFailed(
            f"export check failed: logits of {out} differ from the run's model by {diff:.2e} "
            f"(tolerance {tolerance}); the export is kept for inspection"
        )
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out, trust_remote_code=trust_remote_code)
    answer_ids = _generate_ids(reloaded, tok, probe, stops)
    stopped = bool(answer_ids) and answer_ids[-1] in stops
    if check_stop and not stopped:
        raise ExportCheckFailed(
            f"export check failed: {out} generated 128 tokens without its stop token "
            f"({', '.join(run.stop_tokens)}); the model did not learn to stop or the template lost it"
        )
    answer = generate_answers(reloaded, tok, [probe], stop_tokens=run.stop_tokens, max_new_tokens=64)[0]
    return {"out": str(out), "max_logit_diff": diff, "stops": stopped, "probe_answer": answer}


def check_mergeable(run_dir: str | Path, *, trust_remote_code: bool = False) -> None:
    """Fail before loading anything when the run's adapter cannot fold into the base weights: PEFT's
    prompt-learning adapters (virtual tokens, prefixes) and our own added modules (adapter, mam, ...)."""
    from tuneforge.methods import METHODS
    from tuneforge.models.merge import unmergeable

    cfg, manifest = read_run(run_dir, trust_remote_code=trust_remote_code)
    if METHODS.get(cfg.method.name).SUPPORTS["merge"]:
        return
    if manifest.get("artifact") == "adapter":
        raise unmergeable(cfg.method.name)
    if manifest.get("artifact") == "method_adapter":
        raise ModelError(
            f"{run_dir}: method {cfg.method.name!r} adds modules of its own that cannot be folded into the "
            "base weights, so `export --merge` cannot write a plain model; use it with "
            f"`tuneforge chat {run_dir}`, or train with a mergeable method (lora, bitfit, llama_pro, full)"
        )


@torch.no_grad()
def _generate_ids(model, tok, messages, stops) -> list[int]:
    ids = torch.tensor([prompt_ids(tok, messages)])
    out = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=128,
        do_sample=False,
        eos_token_id=stops,
        pad_token_id=tok.pad_token_id,
    )
    return out[0, ids.shape[1] :].tolist()
