"""Build a preference stage's trainer the way `tuneforge.train.run_training` does, without the CLI,
so tests can look at the trainer, its batches and its models."""

from __future__ import annotations

import json
from pathlib import Path

from tuneforge.config.load import load_config

PAIRS = [
    ("What is the capital of France?", "Paris.", "It is Lyon, I think, but who knows."),
    ("What is 7 times 8?", "56.", "Around 54, multiplication is hard."),
    ("How many days are in a week?", "Seven.", "About ten, depending on the calendar."),
    ("What color is a ripe banana?", "Yellow.", "Blue, most people say."),
]


def write_pairs(path: Path, same_answers: bool = False) -> Path:
    rows = [{"instruction": q, "chosen": g, "rejected": g if same_answers else b} for q, g, b in PAIRS]
    path.write_text(json.dumps(rows))
    return path


def write_kto(path: Path) -> Path:
    rows = [
        {
            "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": g if i % 2 else b}],
            "label": bool(i % 2),
        }
        for i, (q, g, b) in enumerate(PAIRS)
    ]
    path.write_text(json.dumps(rows))
    return path


def stage_config(
    tmp_path: Path, model_dir: Path, data: Path, stage: dict, method: dict | None = None, fmt: str = "alpaca"
):
    return load_config(
        None,
        [],
        data={
            "model": {"name_or_path": str(model_dir)},
            "data": {"datasets": [{"path": str(data), "format": fmt}], "max_length": 64},
            "method": method or {"name": "lora", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0},
            "stage": stage,
            "train": {
                "max_steps": 2,
                "per_device_train_batch_size": 2,
                "learning_rate": 1e-3,
                "logging_steps": 1,
                "save_steps": 100,
                "report_to": ["none"],
                "lr_scheduler_type": "constant",
            },
            "output": {"dir": str(tmp_path / "run"), "plot_loss": False},
        },
    )


def build_stage_trainer(cfg, train_dataset=None):
    """The trainer for ``cfg`` (a validated Config) through the run's prologue; ``train_dataset``
    replaces the prepared data (e.g. hand-made ids)."""
    from tuneforge.training.build import build_trainer
    from tuneforge.training.prepare import prepare

    prepared = prepare(cfg, write_folder=False, quiet=True)
    if train_dataset is not None:
        prepared.data.train, prepared.data.eval = train_dataset, None
    return build_trainer(prepared)
