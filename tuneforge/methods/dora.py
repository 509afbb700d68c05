"""`dora`: weight-decomposed LoRA (Liu et al. 2024, https://arxiv.org/abs/2402.09353): each adapted
weight is split into a magnitude vector (trained) and a direction that LoRA updates. `lora` with
``use_dora: true``; closer to full fine-tuning at low rank, a little slower per step.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.methods._base import no_load_kwargs
from tuneforge.methods._lora_common import LoraFields, apply_lora

DESCRIPTION = "DoRA: LoRA plus a trained magnitude per output feature (weight-decomposed LoRA)."
SUPPORTS = {"quantized_base": False, "merge": True, "multi_adapter": True}


class Config(LoraFields):
    name: Literal["dora"] = "dora"
    use_dora: Literal[True] = Field(True, description="Always true for this method.")


load_kwargs = no_load_kwargs
apply = apply_lora
