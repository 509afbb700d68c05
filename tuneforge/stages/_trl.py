"""Pieces the TRL-backed stages (grpo, distill) share (step 6 of a run: build the stage's trainer).

- `trl_arguments`: the run's `TrainingArguments` (the tested `train:` mapping in tuneforge.train) copied
  field by field into a TRL config class, plus the stage's own fields, so a TRL config never falls
  back to TRL's defaults where ours differ (TRL turns on gradient checkpointing and bf16 by default).
- `final_metrics`: the last logged value of each metric (reward, kl, ...) for the manifest.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from transformers import TrainingArguments


def trl_arguments(config_cls: type, training_args: TrainingArguments, **fields: Any) -> Any:
    """``config_cls`` (a TRL config, a TrainingArguments subclass) with every TrainingArguments field
    taken from ``training_args`` and the stage's ``fields`` on top."""
    base = {
        f.name: getattr(training_args, f.name)
        for f in dataclasses.fields(TrainingArguments)
        if f.init and hasattr(training_args, f.name)
    }
    # TrainingArguments normalises these in __post_init__; give back what it was built from
    base["report_to"] = list(training_args.report_to) or "none"
    unknown = set(fields) - {f.name for f in dataclasses.fields(config_cls)}
    assert not unknown, f"{config_cls.__name__} has no fields {unknown}"  # a bug in the stage's mapping
    return config_cls(**{**base, **fields})


def final_metrics(log_history: list[dict], prefixes: tuple[str, ...]) -> dict[str, float]:
    """The last finite logged value of every metric whose name starts with one of ``prefixes``."""
    out: dict[str, float] = {}
    for entry in log_history:
        for k, v in entry.items():
            if k.startswith(prefixes) and isinstance(v, (int, float)) and math.isfinite(v):
                out[k] = float(v)
    return out
