"""LoRA's up-projection, scaling and sum with the base output as one matrix multiply-add:
`speed.fused_lora_output`, applied by `tuneforge.speed.setup`.

PEFT computes a LoRA layer as ``result + lora_B(lora_A(dropout(x))) * scaling``: after the small
``lora_B`` product, a multiplication and an addition each read and write a full
``[tokens x out_features]`` tensor, and backward multiplies the incoming gradient by the scaling on
that full size again. Here the same sum is ``result.addmm_(a, lora_B.weight.T, alpha=scaling)``:
one pass, in place in the base output (which the base Linear does not keep for backward), the
scaling applied inside the multiply (and, in backward, to the small ``[tokens x r]`` gradient).
The sum is the same up to float rounding (`tests/invariance/test_lora_output.py`).

Only plain LoRA layers (PEFT's ``lora.Linear`` over an ``nn.Linear``; no DoRA or other variant, no
LoRA bias) are changed, and only the call with one active adapter, adapters enabled and not merged:
every other call (a disabled adapter for a reference model, mixed-adapter batches) is PEFT's own
forward.
"""

from __future__ import annotations

import types

import torch
from torch import nn


def _fused_forward(layer: nn.Module, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    names = layer.active_adapters
    if args or kwargs or layer.disable_adapters or layer.merged or len(names) != 1:
        return type(layer).forward(layer, x, *args, **kwargs)
    name = names[0]
    if name not in layer._tuneforge_fused_output:
        return type(layer).forward(layer, x, *args, **kwargs)
    lead = x.shape[:-1]
    x = x.reshape(-1, x.shape[-1])  # 2-D from here, so the sum below is in place on a plain tensor
    result = layer.base_layer(x)
    lora_a = layer.lora_A[name]
    a = lora_a(layer.lora_dropout[name](layer._cast_input_dtype(x, lora_a.weight.dtype)))
    b = layer.lora_B[name].weight
    if a.dtype != result.dtype or b.dtype != result.dtype:
        return (result + layer.lora_B[name](a) * layer.scaling[name]).view(*lead, -1)
    # in place: the base output is not kept for backward (a Linear keeps its input), so adding into
    # it saves writing a fresh [tokens x out_features] tensor. B^T is made row-major (a copy of
    # r x out_features numbers): autograd then computes B's gradient as a^T @ grad, faster on the
    # CPU than the (grad^T @ a)^T it picks for a transposed view
    return result.addmm_(a, b.t().contiguous(), alpha=layer.scaling[name]).view(*lead, -1)


def fusable(layer: nn.Module) -> list[str]:
    """The adapters of ``layer`` whose output this module can compute."""
    from peft.tuners.lora import Linear

    if type(layer) is not Linear or type(layer.get_base_layer()) is not nn.Linear:
        return []
    return [
        name
        for name, b in layer.lora_B.items()
        if name not in getattr(layer, "lora_variant", {})
        and type(b) is nn.Linear
        and b.bias is None
        and type(layer.lora_A[name]) is nn.Linear
    ]


def fuse_lora_output(model: nn.Module) -> int:
    """Patch every LoRA layer of ``model`` with a fusable adapter; returns how many."""
    n = 0
    for layer in list(model.modules()):
        names = fusable(layer)
        if names:
            layer._tuneforge_fused_output = frozenset(names)
            layer.forward = types.MethodType(_fused_forward, layer)
            n += 1
    return n


def unfuse_lora_output(model: nn.Module) -> None:
    for layer in model.modules():
        if layer.__dict__.pop("_tuneforge_fused_output", None) is not None:
            del layer.forward
