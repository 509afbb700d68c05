"""`lorafa`: LoRA with A frozen at its random initialisation (Zhang et al. 2023, LoRA-FA,
https://arxiv.org/abs/2308.03303): only B trains, so the activations feeding A need not be kept
for the backward pass (less memory). PEFT's ``create_lorafa_optimizer`` (an AdamW that projects
B's gradient to approximate full fine-tuning) comes in through the ``create_optimizer`` hook.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.methods._base import no_load_kwargs
from tuneforge.methods._lora_common import LoraFields, apply_lora

DESCRIPTION = "LoRA-FA: LoRA with A frozen, only B trains (less activation memory)."
SUPPORTS = {"quantized_base": False, "merge": True, "multi_adapter": True}


class Config(LoraFields):
    name: Literal["lorafa"] = "lorafa"
    use_dora: Literal[False] = Field(
        False, description="Always false: LoRA-FA's optimizer pairs each A with its B, DoRA adds a third."
    )


load_kwargs = no_load_kwargs


def apply(model, cfg: Config):
    model = apply_lora(model, cfg)
    # A stays at its initialisation; the optimizer below also skips it, but freezing it here makes
    # the trainable count honest and lets autograd drop A's gradient
    for name, p in model.named_parameters():
        if ".lora_A." in name:
            p.requires_grad_(False)
    return model


def create_optimizer(model, cfg: Config, args):
    from peft.optimizers import create_lorafa_optimizer

    return create_lorafa_optimizer(
        model, r=cfg.r, lora_alpha=cfg.lora_alpha, lr=args.learning_rate, weight_decay=args.weight_decay
    )
