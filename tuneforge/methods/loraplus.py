"""`loraplus`: LoRA whose B matrices learn `loraplus_lr_ratio` times faster than A (Hayou et al. 2024,
https://arxiv.org/abs/2402.12354). Same adapter as `lora`; only the optimizer differs, built by
PEFT's ``create_loraplus_optimizer`` through the ``create_optimizer`` method hook (AdamW with the
run's `train.learning_rate` for A, betas, epsilon and weight decay).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.methods._base import no_load_kwargs
from tuneforge.methods._lora_common import LoraFields, apply_lora

DESCRIPTION = "LoRA+: LoRA with B trained at loraplus_lr_ratio x the learning rate of A; faster learning."
SUPPORTS = {"quantized_base": False, "merge": True, "multi_adapter": True}


class Config(LoraFields):
    name: Literal["loraplus"] = "loraplus"
    loraplus_lr_ratio: float = Field(
        16.0,
        gt=0,
        description="Learning rate of B divided by that of A (train.learning_rate); the paper uses 2**4. "
        "This method builds its own AdamW, so train.optim is not used.",
    )
    loraplus_lr_embedding: float = Field(
        1e-6, ge=0, description="Learning rate of LoRA adapters on embedding layers, if any are targeted."
    )


load_kwargs = no_load_kwargs
apply = apply_lora


def create_optimizer(model, cfg: Config, args):
    import torch
    from peft.optimizers import create_loraplus_optimizer

    return create_loraplus_optimizer(
        model,
        torch.optim.AdamW,
        lr=args.learning_rate,
        loraplus_lr_ratio=cfg.loraplus_lr_ratio,
        loraplus_lr_embedding=cfg.loraplus_lr_embedding,
        loraplus_weight_decay=args.weight_decay,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
    )
