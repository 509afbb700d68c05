"""Helpers for tests that train: write configs and data, run the CLI in-process."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tuneforge.cli import main

ALPACA_ROWS = [
    {"instruction": "What is your name?", "input": "", "output": "My name is Forge."},
    {"instruction": "Who made you?", "input": "", "output": "The tuneforge team made me."},
    {"instruction": "Add the numbers.", "input": "12 + 30", "output": "12 + 30 = 42"},
    {"instruction": "Say hello in French.", "input": "", "output": "Bonjour !"},
    {"instruction": "What colour is the sky on a clear day?", "input": "", "output": "Blue."},
    {"instruction": "Name a prime number.", "input": "", "output": "Seven is a prime number."},
    {"instruction": "Translate 'cat' to German.", "input": "", "output": "Katze"},
    {"instruction": "Count to three.", "input": "", "output": "One, two, three."},
]


def write_alpaca(path: Path, rows: list[dict] = ALPACA_ROWS) -> Path:
    path.write_text(json.dumps(rows, ensure_ascii=False))
    return path


def make_config(tmp_path: Path, model_dir: Path, data_path: Path, **sections) -> dict:
    cfg = {
        "model": {"name_or_path": str(model_dir)},
        "data": {"datasets": [{"path": str(data_path), "format": "alpaca"}], "max_length": 64},
        "method": {"name": "lora", "r": 4, "lora_alpha": 8},
        "train": {
            "max_steps": 4,
            "per_device_train_batch_size": 4,
            "learning_rate": 1e-3,
            "logging_steps": 1,
            "save_steps": 2,
            "report_to": ["none"],
            "lr_scheduler_type": "constant",
        },
        "output": {"dir": str(tmp_path / "run"), "plot_loss": False},
    }
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    return cfg


def write_config(tmp_path: Path, cfg: dict, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err
