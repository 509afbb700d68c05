"""Export support: fold a trained adapter into its base and return a plain transformers model.

LoRA merges the usual way (W + scale * B @ A). A QLoRA base is 4- or 8-bit; merging into it
would re-quantize W + B @ A and change the outputs. Instead each quantized weight is dequantized
with bitsandbytes (exactly the weight the adapter was trained against), the adapter's update is
added in float, and the result is a plain float model with no `quantization_config`.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from tuneforge.errors import ModelError


def merge_adapter(model) -> nn.Module:
    """The adapter of PEFT ``model`` merged into its base, as a plain ``PreTrainedModel``.

    The input model is consumed: for an unquantized base PEFT merges in place.
    """
    from peft import PeftModel

    if not isinstance(model, PeftModel):
        raise ModelError(
            f"only adapter models can be merged, got {type(model).__name__}; full and freeze runs already "
            "save the whole model"
        )
    if model.peft_config[model.active_adapter].is_prompt_learning:
        raise unmergeable(model.peft_config[model.active_adapter].peft_type.value.lower())
    if not _is_bnb_quantized(model.get_base_model()):
        return model.merge_and_unload()
    return _merge_into_dequantized(model)


def unmergeable(kind: str) -> ModelError:
    """The error for adapters that live outside the weights (prompt, p- and prefix tuning)."""
    return ModelError(
        f"a {kind} adapter cannot be merged: it learns extra virtual tokens or attention prefixes, not "
        "weight changes, so no plain model can hold it; serve the run with `tuneforge chat RUN_DIR`, or "
        "load base + adapter with peft.PeftModel.from_pretrained(base, RUN_DIR/adapter)"
    )


def dequantize_weight(layer: nn.Module) -> torch.Tensor:
    """The float weight of a (possibly bitsandbytes-quantized) linear layer."""
    import bitsandbytes as bnb

    w = layer.weight
    if isinstance(w, bnb.nn.Params4bit):
        if getattr(w.quant_state, "packing_format_for_cpu", False):
            # repacked by a CPU eval forward outside our loader (see keep_4bit_layers_exact); undo
            # it as bitsandbytes does before saving
            from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse

            w.data, w.quant_state = _convert_weight_packed_for_cpu_inverse(w.data, w.quant_state)
        return bnb.functional.dequantize_4bit(w.data, w.quant_state)
    if isinstance(w, bnb.nn.Int8Params):
        scb = w.SCB if getattr(w, "SCB", None) is not None else layer.state.SCB
        return bnb.functional.int8_vectorwise_dequant(w.data, scb)
    return w.detach()


def _is_bnb_quantized(model: nn.Module) -> bool:
    return bool(getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False))


def _merge_into_dequantized(model) -> nn.Module:
    from tuneforge.models.state_dict import model_from_state_dict

    base = model.get_base_model()
    config = copy.deepcopy(base.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    dtype = (
        config.dtype
        if isinstance(config.dtype, torch.dtype)
        else getattr(torch, str(config.dtype or "float32"))
    )
    state: dict[str, torch.Tensor] = {}
    _collect(base, "", state, dtype)
    merged = model_from_state_dict(config, state, dtype=dtype)
    merged.generation_config = copy.deepcopy(base.generation_config)
    return merged


@torch.no_grad()
def _collect(module: nn.Module, prefix: str, state: dict[str, torch.Tensor], dtype: torch.dtype) -> None:
    """Fill ``state`` with the plain model's parameters, named as in the unwrapped model; each goes
    to the CPU in the model's dtype at once, so a large model is never held twice in float32 on the
    GPU."""
    import bitsandbytes as bnb
    from peft.tuners.lora import LoraLayer
    from peft.utils import ModulesToSaveWrapper

    if isinstance(module, LoraLayer):
        if module.merged:
            raise ModelError(
                "the adapter was already merged into the 4-bit base, which re-quantized it; reload the run"
            )
        base_layer = module.get_base_layer()
        weight = dequantize_weight(base_layer).float()
        for adapter in module.active_adapters:
            if adapter in module.scaling:
                weight += module.get_delta_weight(adapter).float()
        state[prefix + "weight"] = weight.to("cpu", dtype)
        if getattr(base_layer, "bias", None) is not None:
            state[prefix + "bias"] = base_layer.bias.detach().to("cpu", dtype)
        return
    if isinstance(module, ModulesToSaveWrapper):
        active = module.active_adapters
        _collect(
            module.modules_to_save[active[0]] if active else module.original_module, prefix, state, dtype
        )
        return
    if isinstance(module, bnb.nn.Linear4bit | bnb.nn.Linear8bitLt):
        state[prefix + "weight"] = dequantize_weight(module).to("cpu", dtype)
        if module.bias is not None:
            state[prefix + "bias"] = module.bias.detach().to("cpu", dtype)
        return
    for name, p in module._parameters.items():
        if p is not None:
            state[prefix + name] = p.detach().to("cpu", dtype)
    for name, b in module._buffers.items():
        if b is not None and name not in module._non_persistent_buffers_set:
            state[prefix + name] = b.to("cpu")
    for name, child in module.named_children():
        _collect(child, f"{prefix}{name}.", state, dtype)
