"""`rslora`: rank-stabilised LoRA (Kalajdzievski 2023, https://arxiv.org/abs/2312.03732): the update
is scaled by lora_alpha / sqrt(r) instead of lora_alpha / r, so higher ranks keep learning instead
of being damped. `lora` with ``use_rslora: true``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.methods._base import no_load_kwargs
from tuneforge.methods._lora_common import LoraFields, apply_lora

DESCRIPTION = "rsLoRA: LoRA scaled by alpha / sqrt(r), so large ranks train as well as small ones."
SUPPORTS = {"quantized_base": False, "merge": True, "multi_adapter": True}


class Config(LoraFields):
    name: Literal["rslora"] = "rslora"
    use_rslora: Literal[True] = Field(True, description="Always true for this method.")


load_kwargs = no_load_kwargs
apply = apply_lora
