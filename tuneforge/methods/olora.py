"""`olora`: LoRA initialised from a QR decomposition of each weight (Büyükakyüz 2024,
https://arxiv.org/abs/2406.01775): A and B start orthonormal and the base keeps the rest, which
speeds up and steadies early training. The saved adapter is converted to plain LoRA (rank 2r) for
the original base (`_lora_common.save_weights`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.methods._base import no_load_kwargs
from tuneforge.methods._lora_common import LoraFields, apply_lora

DESCRIPTION = "OLoRA: LoRA initialised from a QR decomposition of each weight (orthonormal start)."
SUPPORTS = {"quantized_base": False, "merge": True, "multi_adapter": True}


class Config(LoraFields):
    name: Literal["olora"] = "olora"
    init_lora_weights: Literal["olora"] = Field("olora", description="Always olora for this method.")


load_kwargs = no_load_kwargs
apply = apply_lora
