"""`apollo`: full fine-tuning with the APOLLO optimizer (Zhu et al. 2024,
https://arxiv.org/abs/2412.05270): AdamW-like updates whose per-channel (or per-tensor) scaling is
estimated in a low-rank, by default random, projection of the gradient, for SGD-like memory.
`rank=1, scale_type=tensor` is APOLLO-Mini. Every parameter trains; the run saves the whole
model. The optimizer is HF Trainer's ``apollo_adamw*`` (package apollo-torch).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.methods._lowrank_optim import LowRankOptimFields, apply, load_kwargs, optimizer_arguments

__all__ = ["Config", "apply", "load_kwargs", "training_arguments"]

DESCRIPTION = "APOLLO: full fine-tuning, AdamW-like scaling from a low-rank random projection."
SUPPORTS = {"quantized_base": False, "merge": False, "multi_adapter": False}


class Config(LowRankOptimFields):
    name: Literal["apollo"] = "apollo"
    scale: float = Field(
        1.0, gt=0, description="Scale of the update (optim_args scale); APOLLO-Mini uses 128 with rank 1."
    )
    proj: Literal["random", "svd"] = Field("random", description="Projection: random (APOLLO) or svd.")
    scale_type: Literal["channel", "tensor"] = Field(
        "channel", description="Scaling factor per channel (APOLLO) or per tensor (APOLLO-Mini)."
    )


def training_arguments(cfg: Config) -> dict:
    return optimizer_arguments(
        cfg,
        "apollo_adamw",
        "apollo_torch",
        scale=cfg.scale,
        proj=cfg.proj,
        scale_type=cfg.scale_type,
        proj_type=cfg.proj_type,
    )
