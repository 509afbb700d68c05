"""A run that visibly learns: full fine-tuning of the tiny random Llama on a highly regular dataset
(sixteen questions, one short answer), which a working optimizer brings from ln(vocab) to below half
of it within 20 steps. Used by the expected-loss regression and by the tests that prove it can fail."""

from __future__ import annotations

import json
import math
from pathlib import Path

from tests.helpers.runs import make_config, write_alpaca

ANSWER = "The forge is hot."
REGULAR_ROWS = [
    {"instruction": f"Question number {i}: what is hot?", "input": "", "output": ANSWER} for i in range(16)
]
STEPS = 20
LEARNING_RATE = 3e-3
# the bar a run must clear: its last logged loss below this share of its first
LEARNED_SHARE = 0.5


def learning_config(tmp_path: Path, model_dir: Path, **train) -> dict:
    """Full fine-tuning, constant learning rate, a loss logged every step, one checkpoint at the end."""
    cfg = make_config(tmp_path, model_dir, write_alpaca(tmp_path / "regular.json", REGULAR_ROWS))
    cfg["method"] = {"name": "full"}
    cfg["train"].update(
        max_steps=STEPS,
        save_steps=STEPS,
        per_device_train_batch_size=4,
        learning_rate=LEARNING_RATE,
        lr_scheduler_type="constant",
        logging_steps=1,
    )
    cfg["train"].update(train)
    return cfg


def logged_losses(run_dir: Path, step: int) -> list[float]:
    """The training losses logged up to ``step``, from that checkpoint's trainer state."""
    state = json.loads((run_dir / f"checkpoint-{step}" / "trainer_state.json").read_text())
    return [e["loss"] for e in state["log_history"] if "loss" in e]


def learned(losses: list[float]) -> bool:
    """The bar: finite losses whose last is below LEARNED_SHARE of the first."""
    return all(math.isfinite(x) for x in losses) and losses[-1] < LEARNED_SHARE * losses[0]
