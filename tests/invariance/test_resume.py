"""A run interrupted after a checkpoint and resumed with train.resume_from_checkpoint=auto ends
at the same step with the same loss and weights as an uninterrupted run (optimizer, scheduler,
RNG and data position restored)."""

from __future__ import annotations

import json

import pytest
import torch

from tests.helpers.runs import Crash, CrashAt, make_config, write_alpaca


def _config(tmp_path, model_dir, name):
    rows = [
        {"instruction": f"Item {i}", "input": "", "output": f"Answer number {i} " * (1 + i % 3)}
        for i in range(24)
    ]
    data = write_alpaca(tmp_path / "d.json", rows)
    cfg = make_config(tmp_path / name, model_dir, data)
    cfg["train"].update(
        max_steps=6,
        save_steps=3,
        per_device_train_batch_size=2,
        lr_scheduler_type="linear",
        save_total_limit=None,
    )
    cfg["method"]["lora_dropout"] = 0.1  # so the RNG state matters
    return cfg


def _final(run_dir):
    from safetensors.torch import load_file

    manifest = json.loads((run_dir / "manifest.json").read_text())
    return manifest, load_file(run_dir / "adapter" / "adapter_model.safetensors")


def test_resume_matches_uninterrupted(tmp_path, tiny_llama_dir, monkeypatch):
    from tuneforge.config.load import load_config
    from tuneforge.train import run_training

    straight = run_training(load_config(None, data=_config(tmp_path, tiny_llama_dir, "straight")))

    cfg = _config(tmp_path, tiny_llama_dir, "crashed")
    import tuneforge.stages._base as stage_base

    real = stage_base.build_causal_lm_trainer

    def crashing(ctx):
        trainer = real(ctx)
        trainer.add_callback(CrashAt(4))
        return trainer

    monkeypatch.setattr("tuneforge.stages.sft.build_trainer", crashing)
    with pytest.raises(Crash):
        run_training(load_config(None, data=cfg))
    run_dir = tmp_path / "crashed" / "run"
    assert (run_dir / "checkpoint-3").is_dir() and not (run_dir / "manifest.json").exists()
    monkeypatch.undo()

    resumed = run_training(load_config(None, ["train.resume_from_checkpoint=auto"], data=cfg))
    m_a, w_a = _final(straight)
    m_b, w_b = _final(resumed)
    assert m_a["metrics"]["global_step"] == m_b["metrics"]["global_step"] == 6
    logs_a = json.loads((straight / "checkpoint-6" / "trainer_state.json").read_text())["log_history"]
    logs_b = json.loads((resumed / "checkpoint-6" / "trainer_state.json").read_text())["log_history"]
    loss_a = [e["loss"] for e in logs_a if "loss" in e]
    loss_b = [e["loss"] for e in logs_b if "loss" in e]
    assert loss_a[-1] == pytest.approx(loss_b[-1], abs=1e-4)
    for name in w_a:
        torch.testing.assert_close(w_a[name], w_b[name], atol=1e-5, rtol=1e-4, msg=name)


def test_staging_leftover_is_not_a_checkpoint(tmp_path):
    from tuneforge.training.checkpoints import latest_checkpoint

    (tmp_path / "checkpoint-2").mkdir()
    (tmp_path / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-5").mkdir()  # a crash mid-write never produces this, but be safe
    (tmp_path / ".staging" / "checkpoint-8").mkdir(parents=True)
    assert latest_checkpoint(tmp_path).name == "checkpoint-2"
