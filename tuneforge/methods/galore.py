"""`galore`: full fine-tuning with the GaLore optimizer (Zhao et al. 2024,
https://arxiv.org/abs/2403.03507): Adam's state for each target weight lives in a rank-`rank`
projection of its gradient, refreshed every `update_proj_gap` steps. Every parameter trains; the
run saves the whole model. The optimizer is HF Trainer's ``galore_adamw*`` (package galore-torch).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.methods._lowrank_optim import LowRankOptimFields, apply, load_kwargs, optimizer_arguments

__all__ = ["Config", "apply", "load_kwargs", "training_arguments"]

DESCRIPTION = "GaLore: full fine-tuning, optimizer state in a low-rank gradient projection."
SUPPORTS = {"quantized_base": False, "merge": False, "multi_adapter": False}


class Config(LowRankOptimFields):
    name: Literal["galore"] = "galore"
    scale: float = Field(0.25, gt=0, description="Scale of the projected-back update (optim_args scale).")
    optimizer: Literal["adamw", "adamw_8bit", "adafactor"] = Field(
        "adamw",
        description="Inner optimizer: galore_adamw, galore_adamw_8bit (bitsandbytes) or galore_adafactor. "
        "Overrides train.optim.",
    )


def training_arguments(cfg: Config) -> dict:
    return optimizer_arguments(
        cfg, f"galore_{cfg.optimizer}", "galore_torch", scale=cfg.scale, proj_type=cfg.proj_type
    )
