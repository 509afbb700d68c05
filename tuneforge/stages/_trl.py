"""What the TRL-backed stages that generate (grpo, ppo) share: the last logged value of each of
their metrics (reward, kl, ...) for the manifest (step 7 of a run). Their TRL config comes from
`tuneforge.training.arguments.trl_arguments`, like every stage's."""

from __future__ import annotations

import math


def final_metrics(log_history: list[dict], prefixes: tuple[str, ...]) -> dict[str, float]:
    """The last finite logged value of every metric whose name starts with one of ``prefixes``."""
    out: dict[str, float] = {}
    for entry in log_history:
        for k, v in entry.items():
            if k.startswith(prefixes) and isinstance(v, (int, float)) and math.isfinite(v):
                out[k] = float(v)
    return out
