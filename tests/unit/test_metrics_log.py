"""RUN_DIR/metrics.jsonl (`tuneforge.training.metrics_log`): every logged record as it is written,
the same history as the trainer's, one history after a crash and a resume, partial lines skipped."""

from __future__ import annotations

import json

import pytest

from tests.helpers.runs import Crash, make_config, sft_crashing_at, write_alpaca
from tuneforge.training.metrics_log import FILE, read_metrics


def _config(tmp_path, model_dir, name):
    cfg = make_config(tmp_path / name, model_dir, write_alpaca(tmp_path / "d.json"))
    cfg["train"].update(max_steps=4, save_steps=2, save_total_limit=None, seed=3)
    cfg["output"]["plot_loss"] = True
    return cfg


def _losses(records):
    return [(r["step"], r["loss"]) for r in records if "loss" in r]


def test_the_file_is_the_trainers_history(tmp_path, tiny_llama_dir):
    from tuneforge.config.load import load_config
    from tuneforge.train import run_training

    run = run_training(load_config(None, data=_config(tmp_path, tiny_llama_dir, "straight")))
    records = read_metrics(run)
    state = json.loads((run / "checkpoint-4" / "trainer_state.json").read_text())
    logged = [(e["step"], float(e["loss"])) for e in state["log_history"] if "loss" in e]
    assert [(s, float(v)) for s, v in _losses(records)] == logged and [s for s, _ in logged] == [1, 2, 3, 4]
    trained = [r for r in records if "loss" in r]
    assert all("learning_rate" in r and "grad_norm" in r and r["time"] > 0 for r in trained)
    assert "tokens_per_second" not in trained[0] and all(r["tokens_per_second"] > 0 for r in trained[1:])
    assert "train_runtime" in records[-1]  # the Trainer's closing summary is a record too
    assert (run / "loss.png").is_file()


def test_a_resumed_run_keeps_one_history(tmp_path, tiny_llama_dir, monkeypatch):
    from tuneforge.config.load import load_config
    from tuneforge.train import run_training

    straight = read_metrics(
        run_training(load_config(None, data=_config(tmp_path, tiny_llama_dir, "straight")))
    )

    cfg = _config(tmp_path, tiny_llama_dir, "crashed")
    with (
        sft_crashing_at(monkeypatch, 4),
        pytest.raises(Crash),
    ):  # after step 3 was logged, before checkpoint-4
        run_training(load_config(None, data=cfg))
    run_dir = tmp_path / "crashed" / "run"
    assert [s for s, _ in _losses(read_metrics(run_dir))] == [1, 2, 3]
    with (run_dir / FILE).open("a") as f:
        f.write('{"step": 3, "loss": 1.2')  # a line cut off by the kill

    cfg["train"]["resume_from_checkpoint"] = "auto"
    resumed = read_metrics(run_training(load_config(None, data=cfg)))
    assert [s for s, _ in _losses(resumed)] == [1, 2, 3, 4]  # step 3 once: the resumed run's
    for (step, a), (_, b) in zip(_losses(resumed), _losses(straight), strict=True):
        assert a == pytest.approx(b, rel=1e-4), step


def test_a_partial_or_missing_file(tmp_path):
    assert read_metrics(tmp_path) == []
    (tmp_path / FILE).write_text('{"step": 1, "loss": 2.0}\nnot json\n{"step": 2, "lo')
    assert read_metrics(tmp_path) == [{"step": 1, "loss": 2.0}]
