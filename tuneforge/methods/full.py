"""`full`: every parameter trains."""

from __future__ import annotations

from typing import Literal

from tuneforge.methods._base import MethodConfig, no_load_kwargs

DESCRIPTION = "Full fine-tuning: every parameter trains."
SUPPORTS = {"quantized_base": False, "merge": False, "multi_adapter": False}


class Config(MethodConfig):
    name: Literal["full"] = "full"


load_kwargs = no_load_kwargs


def apply(model, cfg: Config):
    for p in model.parameters():
        p.requires_grad_(True)
    return model
