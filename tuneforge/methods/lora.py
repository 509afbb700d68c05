"""`lora`: low-rank adapters on a frozen base (Hu et al. 2021, https://arxiv.org/abs/2106.09685).

The fields and the PEFT wiring live in `_lora_common`, shared with `qlora`.
"""

from __future__ import annotations

from typing import Literal

from tuneforge.methods._base import no_load_kwargs
from tuneforge.methods._lora_common import LoraFields, apply_lora

DESCRIPTION = "LoRA: small low-rank adapters train, the base model stays frozen."
SUPPORTS = {"quantized_base": False, "merge": True, "multi_adapter": True}


class Config(LoraFields):
    name: Literal["lora"] = "lora"


load_kwargs = no_load_kwargs


def apply(model, cfg: Config):
    return apply_lora(model, cfg)
