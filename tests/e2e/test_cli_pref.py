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
    from tuneforge.rewards.reward_model import load_rm_run as load_reward_model

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
    # the eval metrics are those of the saved model on the 2 held-out pairs (the run evaluates at its end)
    held_out = _held_out_pairs(tmp_path / "run")
    assert len(held_out) == 2
    with torch.no_grad():
        margins = [
            float(
                model(input_ids=torch.tensor([p + c])).logits - model(input_ids=torch.tensor([p + r])).logits
            )
            for p, c, r in held_out
        ]
    assert metrics["eval_accuracy"] == pytest.approx(sum(m > 0 for m in margins) / len(margins))
    assert metrics["eval_margin"] == pytest.approx(sum(margins) / len(margins), abs=1e-4)


def _held_out_pairs(run_dir) -> list[tuple[list[int], list[int], list[int]]]:
    """(prompt, chosen, rejected) ids of a preference run's eval split, prepared as the run prepared it."""
    from tuneforge.artifacts import read_run
    from tuneforge.data.pipeline import prepare_data
    from tuneforge.data.templates import resolve_template
    from tuneforge.models.load import load_tokenizer

    cfg, _ = read_run(run_dir)
    tokenizer = load_tokenizer(cfg.model)
    data = prepare_data(cfg, tokenizer, resolve_template(cfg.data.template, tokenizer), "preference")
    return [(r["prompt_ids"], r["chosen_ids"], r["rejected_ids"]) for r in data.eval]


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
