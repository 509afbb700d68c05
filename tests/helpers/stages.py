"""Build a stage's trainer in-process the way `tuneforge.train.run_training` does, so tests can look at
parameters before and after training."""

from __future__ import annotations

from pathlib import Path

import torch

from tuneforge.config.load import load_config
from tuneforge.training.build import build_trainer as build_run_trainer
from tuneforge.training.prepare import prepare


def build_trainer(cfg_dict: dict, run_dir: Path):
    """The trainer `run_training` would train, through the same prologue (no run folder claimed)."""
    cfg = load_config(
        None, [], data={**cfg_dict, "output": {**cfg_dict.get("output", {}), "dir": str(run_dir)}}
    )
    return build_run_trainer(prepare(cfg, write_folder=False, quiet=True))


def snapshot(module: torch.nn.Module) -> dict[str, tuple[bool, torch.Tensor]]:
    return {n: (p.requires_grad, p.detach().clone()) for n, p in module.named_parameters()}


def assert_trained_and_frozen(before: dict, module: torch.nn.Module) -> None:
    """Every trainable parameter changed; every frozen one is unchanged."""
    after = dict(module.named_parameters())
    for name, (trainable, value) in before.items():
        if name not in after:  # removed after training (grpo's KL reference adapter)
            continue
        changed = not torch.equal(value, after[name].detach())
        assert changed == trainable, f"{name}: trainable={trainable} but changed={changed}"
