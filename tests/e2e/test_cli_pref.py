"""Preference stages through the CLI on a tiny model: the run folder (manifest metrics, atomic
checkpoints, the reward model that loads back), `data inspect` on pairs, and bad data as one line."""

from __future__ import annotations

import json

import pytest
import torch

from tests.helpers.pref import write_pairs
from tests.helpers.runs import make_config, run_cli, write_config

pytestmark = pytest.mark.filterwarnings("ignore")


def test_dpo_run_folder(tmp_path, tiny_llama_dir, capsys):
    cfg = make_config(tmp_path, tiny_llama_dir, write_pairs(tmp_path / "p.json"), stage={"name": "dpo"})
    cfg["train"].update(max_steps=2, per_device_train_batch_size=2)
    cfg["data"]["eval_split"] = 1
    code, out, err = run_cli(capsys, "train", str(write_config(tmp_path, cfg)))
    assert code == 0, err[-2000:]
    run = tmp_path / "run"
    metrics = json.loads((run / "manifest.json").read_text())["metrics"]
    for key in ("train_rewards/margins", "train_rewards/accuracies", "eval_rewards/margins", "eval_loss"):
        assert key in metrics, key
    assert (run / "checkpoint-2" / "trainer_state.json").is_file() and not (run / ".staging").exists()
    assert (run / "adapter" / "adapter_model.safetensors").is_file()


def test_rm_run_is_a_reward_model_that_loads_back(tmp_path, tiny_llama_dir, capsys):
    from tuneforge.stages.rm import load_reward_model

    cfg = make_config(tmp_path, tiny_llama_dir, write_pairs(tmp_path / "p.json"), stage={"name": "rm"})
    cfg["train"].update(max_steps=2, per_device_train_batch_size=2)
    cfg["data"]["eval_split"] = 2
    code, out, err = run_cli(capsys, "train", str(write_config(tmp_path, cfg)))
    assert code == 0, err[-2000:]
    metrics = json.loads((tmp_path / "run" / "manifest.json").read_text())["metrics"]
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0 and "eval_margin" in metrics
    model = load_reward_model(tmp_path / "run")
    with torch.no_grad():
        scores = model(input_ids=torch.tensor([[1, 4093, 198, 34, 2], [1, 4093, 198, 35, 2]])).logits
    assert scores.shape == (2, 1) and torch.isfinite(scores).all()


def test_inspect_shows_pairs(tmp_path, tiny_llama_dir, capsys):
    cfg = make_config(tmp_path, tiny_llama_dir, write_pairs(tmp_path / "p.json"), stage={"name": "dpo"})
    code, out, err = run_cli(
        capsys, "data", "inspect", str(write_config(tmp_path, cfg)), "-n", "1", "--color", "never"
    )
    assert code == 0, err[-2000:]
    assert "chosen:" in out and "rejected:" in out and "<|im_end|>]]" in out


def test_missing_rejected_column_is_one_line(tmp_path, tiny_llama_dir, capsys):
    data = tmp_path / "p.json"
    data.write_text(json.dumps([{"instruction": "2+2?", "chosen": "4."}]))
    cfg = make_config(tmp_path, tiny_llama_dir, data, stage={"name": "dpo"})
    code, out, err = run_cli(capsys, "train", str(write_config(tmp_path, cfg)))
    assert code == 2
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    assert "p.json: no column 'rejected'" in line and "columns.rejected" in line
