"""`loftq`: QLoRA whose adapter starts where quantization went wrong (Li et al. 2023, LoftQ,
https://arxiv.org/abs/2310.08659). The base loads in 4 bits as for `qlora`; then each adapter is set
from the SVD of (original float weight - dequantized 4-bit weight), so base + adapter starts
close to the unquantized model instead of at the quantized one.

This is PEFT's ``replace_lora_weights_loftq`` (one LoftQ step on a bitsandbytes base, reading the
float weights from the model's safetensors), done on the model's own device: PEFT's version always
computes on "cuda"/"xpu" (`peft/utils/loftq_utils.py`, ``compute_device``), so it fails on CPU,
and it leaves the LoRA scale (lora_alpha / r) out, so its start is only right when lora_alpha == r.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from pydantic import Field

from tuneforge.errors import ModelError
from tuneforge.methods import qlora

DESCRIPTION = "LoftQ: QLoRA (4-bit base) with the adapter initialised to cancel the quantization error."
SUPPORTS = {"quantized_base": True, "merge": True, "multi_adapter": True}


class Config(qlora.Config):
    name: Literal["loftq"] = "loftq"
    bits: Literal[4] = Field(4, description="LoftQ starts from a 4-bit base (PEFT's LoftQ supports 4 only).")
    init_lora_weights: Literal[True] = Field(True, description="Always true: LoftQ then sets A and B itself.")


load_kwargs = qlora.load_kwargs


def apply(model, cfg: Config):
    source = Path(getattr(model, "name_or_path", "") or "")
    model = qlora.apply(model, cfg)
    _initialise(model, source)
    return model


@torch.no_grad()
def _initialise(peft_model, source: Path) -> int:
    """Set every 4-bit LoRA layer's A and B from the quantization residual; returns how many."""
    from peft.tuners.lora import Linear4bit
    from peft.utils.loftq_utils import _SafetensorLoader

    from tuneforge.models.merge import dequantize_weight

    if not any(source.glob("*.safetensors")):
        raise ModelError(
            f"method 'loftq' reads the float weights from the model's safetensors files, but {source} "
            "has none; convert the model to safetensors (save_pretrained) or use method.name=qlora"
        )
    loader = _SafetensorLoader(peft_model, str(source))
    prefix, done = "base_model.model.", 0
    for name, module in peft_model.named_modules():
        if not isinstance(module, Linear4bit):
            continue
        layer = module.get_base_layer()
        original = loader.get_tensor(name.removeprefix(prefix) + ".weight").to(
            layer.weight.device, torch.float32
        )
        residual = original - dequantize_weight(layer).float()
        for adapter in module.active_adapters:
            r, scale = module.r[adapter], module.scaling[adapter]
            u, s, vh = torch.linalg.svd(residual, full_matrices=False)
            root = s[:r].sqrt()
            a, b = module.lora_A[adapter].weight, module.lora_B[adapter].weight
            a.copy_((root[:, None] * vh[:r]).to(a.dtype))
            b.copy_((u[:, :r] * root / scale).to(b.dtype))  # forward multiplies B @ A by scale
        done += 1
    if not done:
        raise ModelError(
            "method 'loftq' found no 4-bit LoRA layer to initialise; check method.target_modules"
        )
    return done
