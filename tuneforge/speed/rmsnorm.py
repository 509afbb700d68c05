"""RMSNorm layers that keep their input for backward and nothing of the size of the activations
else: `speed.fused_rmsnorm`, applied by `tuneforge.speed.setup`.

Llama-style norms compute ``weight * (x * rsqrt(mean(x^2) + eps))``. Autograd keeps ``x`` and,
when the weight is trained, also the normalised ``x * rsqrt(...)``: two [tokens x hidden] tensors
per norm, two norms per layer. Here the norm is one autograd function that keeps ``x`` and the
per-token ``rsqrt`` and recomputes the normalised values in backward (one elementwise pass), with
the same formulas autograd uses, so the gradients are bitwise the same
(`tests/invariance/test_rmsnorm.py`).

A norm is changed only where its class computes exactly that: each class is probed once, against
its own forward, on a random input (Gemma's ``1 + weight`` norm, for one, is left alone).
"""

from __future__ import annotations

import torch
from torch import nn

from tuneforge.speed.probe import patch_where_exact, unpatch


class _RMSNorm(torch.autograd.Function):
    """``weight * (x * rsqrt(mean(x^2, -1) + eps))``, computed in float32 as transformers does.

    ``x`` comes in twice (``x`` for the product, ``x_sq`` for the mean of squares, the same tensor)
    so that, for float32 input, autograd adds the two gradients to whatever else reaches ``x`` (the
    residual branch) in the order it does for the plain norm: bitwise equal, not just close.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, x_sq: torch.Tensor, weight: torch.Tensor, eps: float):
        h = x.to(torch.float32)
        rstd = torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
        ctx.save_for_backward(x, weight, rstd)
        return weight * (h * rstd).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight, rstd = ctx.saved_tensors
        h = x.to(torch.float32)
        grad_w = None
        if ctx.needs_input_grad[2]:
            grad_w = (grad * (h * rstd).to(x.dtype)).sum_to_size(weight.shape)
        if not (ctx.needs_input_grad[0] or ctx.needs_input_grad[1]):
            return None, None, grad_w, None
        grad_n = (grad * weight).to(torch.float32)
        # the same steps autograd takes through mul, rsqrt, mean and pow
        grad_prod = grad_n * rstd
        grad_rstd = (grad_n * h).sum_to_size(rstd.shape)
        grad_var = -0.5 * grad_rstd * rstd.pow(3)
        grad_sq = (grad_var.expand(h.shape) / h.shape[-1]) * (2.0 * h)
        if x.dtype == torch.float32:
            return grad_prod, grad_sq, grad_w, None
        # autograd adds both in float32 and casts once
        return (grad_prod + grad_sq).to(x.dtype), None, grad_w, None


def _fused_forward(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return _RMSNorm.apply(x, x, norm.weight, norm.variance_epsilon)


def candidates(model: nn.Module) -> list[nn.Module]:
    """transformers' RMSNorm modules (a class named ``*RMSNorm`` with a weight and variance_epsilon)."""
    return [
        m
        for m in model.modules()
        if type(m).__name__.endswith("RMSNorm")
        and isinstance(getattr(m, "weight", None), nn.Parameter)
        and isinstance(getattr(m, "variance_epsilon", None), float)
    ]


@torch.no_grad()
def _computes_rmsnorm(norm: nn.Module) -> bool:
    """The class's own forward equals the fused one on a random input and a random weight."""
    w = norm.weight
    if w.numel() == 0 or not w.is_floating_point():  # partitioned (ZeRO-3) or quantized
        return False
    x = torch.randn(2, 3, w.shape[-1], generator=torch.Generator().manual_seed(0)).to(w.device, w.dtype)
    saved = w.detach().clone()
    try:
        w.copy_(torch.rand(w.shape, generator=torch.Generator().manual_seed(1)).to(w.device, w.dtype) + 0.5)
        return torch.equal(type(norm).forward(norm, x), _fused_forward(norm, x))
    finally:
        w.copy_(saved)


def fuse_rmsnorm(model: nn.Module) -> int:
    """Patch every RMSNorm of ``model`` whose class passes the probe; returns how many."""
    return patch_where_exact(candidates(model), _computes_rmsnorm, _fused_forward)


def unfuse_rmsnorm(model: nn.Module) -> None:
    unpatch(candidates(model))
