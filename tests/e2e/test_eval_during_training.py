"""The `eval:` section of a training config: tasks run at every evaluation, their numbers reach the
log history, TensorBoard and manifest.json, and metric_for_best_model / load_best_model_at_end keep
the best checkpoint by a task metric."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.runs import make_config, run_cli, write_alpaca, write_config

FIX = Path(__file__).parents[1] / "fixtures" / "eval"


def _config(tmp_path, model_dir, **train):
    data = write_alpaca(tmp_path / "d.json")
    tasks = [
        {"name": "generate", "label": "arith", "path": str(FIX / "arith.jsonl"), "max_new_tokens": 4},
        {"name": "perplexity", "label": "ppl", "path": str(data)},
    ]
    cfg = make_config(tmp_path, model_dir, data, eval={"tasks": tasks})
    cfg["train"].update(train)
    return cfg


def test_eval_tasks_at_checkpoints_pick_the_best(tmp_path, tiny_llama_dir, capsys):
    cfg = _config(
        tmp_path,
        tiny_llama_dir,
        report_to=["tensorboard"],
        metric_for_best_model="ppl/loss",
        load_best_model_at_end=True,
        save_total_limit=None,
    )
    code, out, err = run_cli(capsys, "train", str(write_config(tmp_path, cfg)))
    assert code == 0, err[-3000:]
    run = tmp_path / "run"
    manifest = json.loads((run / "manifest.json").read_text())
    state = json.loads((run / "checkpoint-4" / "trainer_state.json").read_text())
    evals = [e for e in state["log_history"] if "eval_ppl/loss" in e]
    assert [e["step"] for e in evals] == [2, 4]  # every save_steps (eval_steps defaults to it)
    assert all("eval_arith/exact_match" in e for e in evals)
    best = min(evals, key=lambda e: e["eval_ppl/loss"])
    assert manifest["best_checkpoint"]["step"] == best["step"]
    assert manifest["best_checkpoint"]["value"] == best["eval_ppl/loss"]
    # the final numbers are those of the best checkpoint, which was loaded and saved
    assert abs(manifest["metrics"]["eval/ppl/loss"] - best["eval_ppl/loss"]) < 1e-4
    assert {"eval/arith/exact_match", "eval/ppl/perplexity"} <= set(manifest["metrics"])

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for events in (run / "logs").rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events.parent))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    assert {"eval/arith/exact_match", "eval/ppl/loss"} <= tags


def test_best_metric_must_name_an_eval_task(tmp_path, tiny_llama_dir, capsys):
    cfg = _config(tmp_path, tiny_llama_dir, metric_for_best_model="arithm/exact_match")
    code, _, err = run_cli(capsys, "train", str(write_config(tmp_path, cfg)))
    assert code == 2 and "no eval task is labelled 'arithm'" in err and "arith, ppl" in err


def test_unknown_task_key_in_training_config_is_one_line(tmp_path, tiny_llama_dir, capsys):
    cfg = _config(tmp_path, tiny_llama_dir)
    cfg["eval"]["tasks"][0]["metric"] = ["bleu"]
    code, _, err = run_cli(capsys, "train", str(write_config(tmp_path, cfg)))
    assert code == 2 and "unknown key eval.tasks.0.metric: did you mean eval.tasks.0.metrics?" in err
