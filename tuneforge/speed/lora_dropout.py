"""LoRA dropout without its copies: `speed.fused_lora_dropout`, applied by `tuneforge.speed.setup`.

PEFT computes ``lora_B(lora_A(dropout(x)))``. Autograd then keeps, for every adapted layer, the
dropout's float mask and the dropped copy of ``x`` (what ``lora_A`` needs for its gradient): eight
bytes per input element per layer, although q, k and v (and gate and up) all read the same ``x``;
with LoRA on every projection that is a large part of the saved activations, and of the step's
passes over memory.

Here dropout and ``lora_A`` are one autograd function that keeps ``x`` itself (shared by the layers
that read it), which elements were dropped, and ``lora_A``'s weight; the dropped input is rebuilt
in backward. Each element is dropped independently with probability ``p`` and kept values are
scaled by 1 / (1 - p), as dropout does. On the CPU the dropped positions are drawn directly, as the
gaps between drops (geometric with parameter ``p``, by inverting one uniform double each, which is
cheaper than ``geometric_``), and kept as int32 flat positions: 4p bytes per element (0.2 at
p = 0.05), and zeroing them in a copy or a gradient touches only those elements, where a mask is a
full pass. On other devices a one-byte keep mask is drawn, one uniform draw per element.

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
    per_log = 1.0 / math.log1p(-p)
    parts, last = [], -1
    while True:
        # ceil(log(1 - u) / log(1 - p)) for u uniform in [0, 1) is geometric on 1, 2, ...; u = 0
        # (probability 2^-53) would give a gap of 0, hence the clamp
        gaps = torch.rand(k, dtype=torch.float64).neg_().log1p_().mul_(per_log).ceil_().clamp_min_(1)
        pos = gaps.to(torch.int64).cumsum_(0).add_(last)
        end = int(pos[-1])
        if end >= n:
            parts.append(pos[: int(torch.searchsorted(pos, n))])
            return parts[0] if len(parts) == 1 else torch.cat(parts)
        parts.append(pos)
        last = end


def draw_drops(shape: torch.Size, p: float, device: torch.device) -> torch.Tensor:
    """Which elements of a tensor of ``shape`` are dropped, each independently with probability
    ``p``: on the CPU their sorted flat positions (int32 where they fit), elsewhere a uint8 keep mask
    (0 where dropped)."""
    if device.type != "cpu":
        return (torch.rand(shape, device=device) >= p).view(torch.uint8)
    n = math.prod(shape)
    pos = drop_positions(n, p)
    return pos.to(torch.int32) if n < 2**31 else pos


def zero_dropped(t: torch.Tensor, drops: torch.Tensor) -> torch.Tensor:
    """``t`` (contiguous) with the elements ``drops`` names set to zero, in place."""
    if drops.dtype == torch.uint8:
        return t.mul_(drops)
    t.view(-1).index_fill_(0, drops.long(), 0)  # index_fill_ takes int64 positions only
    return t


def _dropped_copy(x: torch.Tensor, drops: torch.Tensor) -> torch.Tensor:
    return zero_dropped(x.clone(memory_format=torch.contiguous_format), drops)


class _DropoutLinear(torch.autograd.Function):
    """``linear(dropout(x), weight)`` keeping ``x``, the drops and ``weight`` for backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, p: float):
        drops = draw_drops(x.shape, p, x.device)
        scale = 1.0 / (1.0 - p)
        out = F.linear(_dropped_copy(x, drops), weight).mul_(scale)
        ctx.save_for_backward(x, weight, drops)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, weight, drops = ctx.saved_tensors
        if drops.dtype == torch.int32:
            drops = drops.long()  # once, for both uses below
        g = grad_out * ctx.scale
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = zero_dropped((g @ weight.to(g.dtype)).contiguous(), drops).to(x.dtype)
        if ctx.needs_input_grad[1]:
            kept = _dropped_copy(x, drops)
            grad_w = (g.reshape(-1, g.shape[-1]).T @ kept.reshape(-1, x.shape[-1])).to(weight.dtype)
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
