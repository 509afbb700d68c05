"""`qlora`: LoRA adapters on a base loaded in 4 or 8 bits with bitsandbytes (Dettmers et al. 2023,
https://arxiv.org/abs/2305.14314). `load_kwargs` asks `tuneforge.models.load` for the quantized
base; `apply` prepares it for k-bit training and adds the adapter as `lora` does. Merging goes into
a dequantized base (`tuneforge.models.merge`), never back into 4 bits.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, model_validator

from tuneforge.errors import ModelError
from tuneforge.methods._lora_common import LoraFields, apply_lora

DESCRIPTION = "QLoRA: LoRA adapters on a 4- or 8-bit quantized base (bitsandbytes); least memory."
SUPPORTS = {"quantized_base": True, "merge": True, "multi_adapter": True}


class Config(LoraFields):
    name: Literal["qlora"] = "qlora"
    bits: Literal[4, 8] = Field(4, description="Quantize the base to 4 bits (QLoRA) or 8 bits (LLM.int8).")
    quant_type: Literal["nf4", "fp4"] = Field(
        "nf4", description="Data type of the 4-bit weights; nf4 is QLoRA's."
    )
    double_quant: bool = Field(
        True, description="Also quantize the 4-bit scales, saving ~0.4 bit per parameter (4-bit only)."
    )
    compute_dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32",
        description="dtype the 4-bit weights are dequantized to for each matmul (4-bit only); bfloat16 "
        "on recent GPUs is faster, float32 suits CPUs.",
    )

    @model_validator(mode="after")
    def _base_not_mutated(self):
        if self.mutates_base():
            raise ValueError(
                f"init_lora_weights={self.peft_init()!r} rewrites the base weights, which a quantized base "
                "cannot hold exactly; use method.name=loftq for an initialisation made for 4-bit bases"
            )
        return self


def load_kwargs(cfg: Config) -> dict:
    import torch
    from transformers import BitsAndBytesConfig

    if cfg.bits == 4:
        quant = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=cfg.quant_type,
            bnb_4bit_use_double_quant=cfg.double_quant,
            bnb_4bit_compute_dtype=getattr(torch, cfg.compute_dtype),
        )
    else:
        quant = BitsAndBytesConfig(load_in_8bit=True)
    # bitsandbytes quantizes while weights are placed, so the whole model needs a device up front
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
    return {"quantization_config": quant, "device_map": {"": device}}


def apply(model, cfg: Config):
    from peft import prepare_model_for_kbit_training

    if not (getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False)):
        raise ModelError(
            "method 'qlora' needs a base loaded in 4 or 8 bits; load it with "
            "tuneforge.models.load.load_model(model_cfg, method_cfg), which applies this method's load_kwargs"
        )
    # gradient checkpointing is train.gradient_checkpointing's decision, made by the trainer
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return apply_lora(model, cfg)
