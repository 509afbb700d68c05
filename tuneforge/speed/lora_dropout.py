"""LoRA dropout without its copies: `train.fused_lora_dropout`, applied by `tuneforge.speed.setup`.

PEFT computes ``lora_B(lora_A(dropout(x)))``. Autograd then keeps, for every adapted layer, the
dropout's float mask and the dropped copy of ``x`` (what ``lora_A`` needs for its gradient): eight
bytes per input element per layer, although q, k and v (and gate and up) all read the same ``x``.
On SmolLM2 with seven targets that is more than half of the saved activations, and building those
tensors a fifth of the step.

Here dropout and ``lora_A`` are one autograd function that keeps ``x`` itself (shared by the layers
that read it), a one-byte keep mask, and ``lora_A``'s weight; the dropped input is rebuilt in
backward. Each element is dropped independently with probability ``p`` and kept values are scaled
by 1 / (1 - p), as dropout does. On the CPU the dropped positions are drawn directly, as the gaps
between drops (geometric with parameter ``p``): about ``p`` draws per element instead of one, which
halves the mask's cost; on other devices the mask is one uniform draw per element.

Only vanilla LoRA layers (float, 4- or 8-bit base; no DoRA or other variant) with
``lora_dropout > 0`` are changed: their
``lora_dropout`` entry becomes ``Identity`` and their ``lora_A`` forward does both. Parameters, the
saved adapter and its config are untouched.
"""

from __future__ import annotations

import math
import types

import torch
from torch import nn
from torch.nn import functional as F


def drop_positions(n: int, p: float, draws: int | None = None) -> torch.Tensor:
    """Sorted flat positions in [0, n), each present independently with probability ``p`` (CPU): the
    gaps between successive drops are geometric, so their running sum lists the drops. ``draws``
    per round defaults to enough for nearly always one round."""
    mean = n * p
    k = draws or int(mean + 6 * math.sqrt(mean) + 16)
    parts, last = [], -1
    while True:
        pos = torch.empty(k, dtype=torch.int64).geometric_(p).cumsum_(0).add_(last)
        end = int(pos[-1])
        if end >= n:
            parts.append(pos[: int(torch.searchsorted(pos, n))])
            return parts[0] if len(parts) == 1 else torch.cat(parts)
        parts.append(pos)
        last = end


def keep_mask(shape: torch.Size, p: float, device: torch.device) -> torch.Tensor:
    """A uint8 tensor, 0 where dropped (each element independently with probability ``p``), else 1;
    uint8 because it turns into a float multiplier several times faster than bool does."""
    if device.type != "cpu":
        return (torch.rand(shape, device=device) >= p).view(torch.uint8)
    n = math.prod(shape)
    keep = torch.ones(n, dtype=torch.uint8)
    keep.index_fill_(0, drop_positions(n, p), 0)
    return keep.view(shape)


class _DropoutLinear(torch.autograd.Function):
    """``linear(dropout(x), weight)`` keeping ``x``, the uint8 mask and ``weight`` for backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, p: float):
        keep = keep_mask(x.shape, p, x.device)
        scale = 1.0 / (1.0 - p)
        out = F.linear(keep.to(x.dtype).mul_(x), weight) * scale  # in place: one big tensor, not two
        ctx.save_for_backward(x, weight, keep)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, weight, keep = ctx.saved_tensors
        g = grad_out * ctx.scale
        multiplier = keep.to(g.dtype)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = (g @ weight.to(g.dtype)).mul_(multiplier).to(x.dtype)
        if ctx.needs_input_grad[1]:
            kept = multiplier.mul_(x).reshape(-1, x.shape[-1])  # the multiplier is not needed after this
            grad_w = (g.reshape(-1, g.shape[-1]).T @ kept).to(weight.dtype)
        return grad_x, grad_w, None


def dropout_linear(x: torch.Tensor, weight: torch.Tensor, p: float) -> torch.Tensor:
    """``F.linear(F.dropout(x, p), weight)`` with the memory of the docstring above."""
    return _DropoutLinear.apply(x, weight, p)


def _fused_forward(lora_a: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``lora_A``'s forward with its dropout; bound to the module (a deep copy rebinds to the copy)."""
    p = lora_a._tuneforge_dropout
    if not lora_a.training:
        return F.linear(x, lora_a.weight)
    if torch.is_grad_enabled():
        return dropout_linear(x, lora_a.weight, p)
    return F.linear(F.dropout(x, p, True), lora_a.weight)  # nothing is saved without autograd


def _plain_lora_classes() -> tuple[type, ...]:
    """PEFT's LoRA layers whose forward is ``lora_B(lora_A(dropout(x)))`` for a vanilla adapter."""
    from peft.tuners.lora import Linear

    try:
        from peft.tuners.lora.bnb import Linear4bit, Linear8bitLt
    except ImportError:  # no bitsandbytes
        return (Linear,)
    return (Linear, Linear4bit, Linear8bitLt)


def fusable_layers(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """(LoRA layer, adapter) pairs whose dropout this module can take over."""
    classes = _plain_lora_classes()
    out = []
    for module in model.modules():
        if type(module) not in classes:  # other subclasses may compute the adapter their own way
            continue
        for name, drop in module.lora_dropout.items():
            a = module.lora_A[name]
            if (
                isinstance(drop, nn.Dropout)
                and 0 < drop.p < 1
                and name not in getattr(module, "lora_variant", {})
                and type(a) is nn.Linear
                and a.bias is None
            ):
                out.append((module, name))
    return out


def fuse_lora_dropout(model: nn.Module) -> int:
    """Move each fusable layer's dropout into its ``lora_A``; returns how many were changed."""
    layers = fusable_layers(model)
    for module, name in layers:
        p = module.lora_dropout[name].p
        a = module.lora_A[name]
        a._tuneforge_dropout = p
        a.forward = types.MethodType(_fused_forward, a)
        module.lora_dropout[name] = nn.Identity()
    return len(layers)


def unfuse_lora_dropout(model: nn.Module) -> None:
    """Undo `fuse_lora_dropout` (the layers get plain ``nn.Dropout`` modules back)."""
    classes = _plain_lora_classes()
    for module in model.modules():
        if type(module) not in classes:
            continue
        for name, a in module.lora_A.items():
            p = a.__dict__.pop("_tuneforge_dropout", None)
            if p is not None:
                del a.forward
                module.lora_dropout[name] = nn.Dropout(p)
