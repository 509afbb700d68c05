"""SwiGLU MLPs that keep two tensors for backward instead of three: `speed.fused_swiglu`, applied
by `tuneforge.speed.setup`.

Llama-style MLPs compute ``down(silu(gate(x)) * up(x))``. Autograd keeps ``gate(x)`` (for SiLU's
backward), ``silu(gate(x))`` and ``up(x)`` (for the product's): three tensors of the intermediate
size (the widest in the layer) per token and layer. Here SiLU and the product are one autograd
function that keeps ``gate(x)`` and ``up(x)`` and recomputes SiLU in backward, which costs one
elementwise pass and gives bitwise the same gradients (the same ATen kernels in the same order;
`tests/invariance/test_swiglu.py`). When ``down`` is a trained plain
Linear (full fine-tuning), it joins the function too: its weight gradient needs the product, which
is then recomputed in backward instead of kept, a second [tokens x intermediate] tensor less.

An MLP is changed only where its class computes exactly that: each class is probed once, patched
against its own forward, on a random input.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from tuneforge.speed.probe import patch_where_exact, unpatch


class _SiluMul(torch.autograd.Function):
    """``silu(gate) * up``, keeping only ``gate`` and ``up`` for backward."""

    @staticmethod
    def forward(ctx, gate: torch.Tensor, up: torch.Tensor):
        ctx.save_for_backward(gate, up)
        return F.silu(gate) * up

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        gate, up = ctx.saved_tensors
        grad_gate = grad_up = None
        if ctx.needs_input_grad[0]:
            grad_gate = torch.ops.aten.silu_backward(grad * up, gate)
        if ctx.needs_input_grad[1]:
            grad_up = grad * F.silu(gate)
        return grad_gate, grad_up


def silu_mul(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    return _SiluMul.apply(gate, up)


class _SiluMulLinear(torch.autograd.Function):
    """``linear(silu(gate) * up, weight)`` for a trained ``weight``, keeping ``gate`` and ``up``
    only: the product, which the weight's gradient needs, is recomputed in backward."""

    @staticmethod
    def forward(ctx, gate: torch.Tensor, up: torch.Tensor, weight: torch.Tensor):
        ctx.save_for_backward(gate, up, weight)
        return F.linear(F.silu(gate) * up, weight)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        gate, up, weight = ctx.saved_tensors
        silu = F.silu(gate)
        grad_w = None
        if ctx.needs_input_grad[2]:
            prod = silu * up
            grad_w = grad.reshape(-1, grad.shape[-1]).t().mm(prod.reshape(-1, prod.shape[-1]))
            del prod
        grad_prod = grad.matmul(weight)
        grad_gate = torch.ops.aten.silu_backward(grad_prod * up, gate) if ctx.needs_input_grad[0] else None
        grad_up = grad_prod * silu if ctx.needs_input_grad[1] else None
        return grad_gate, grad_up, grad_w


def _fused_forward(mlp: nn.Module, x: torch.Tensor) -> torch.Tensor:
    down = mlp.down_proj
    if (
        type(down) is nn.Linear
        and down.bias is None
        and down.weight.requires_grad
        and torch.is_grad_enabled()
    ):
        return _SiluMulLinear.apply(mlp.gate_proj(x), mlp.up_proj(x), down.weight)
    return down(silu_mul(mlp.gate_proj(x), mlp.up_proj(x)))


def _is_silu(act: nn.Module) -> bool:
    return isinstance(act, nn.SiLU) or type(act).__name__ == "SiLUActivation"


def candidates(model: nn.Module) -> list[nn.Module]:
    """MLP modules shaped like SwiGLU (gate/up/down projections and a SiLU activation)."""
    return [
        m
        for m in model.modules()
        if all(hasattr(m, n) for n in ("gate_proj", "up_proj", "down_proj", "act_fn")) and _is_silu(m.act_fn)
    ]


@torch.no_grad()
def _computes_swiglu(mlp: nn.Module) -> bool:
    """The class's own forward equals ``down(silu(gate(x)) * up(x))`` on a random input."""
    inner = getattr(mlp.gate_proj, "in_features", None) or mlp.gate_proj.weight.shape[-1]
    param = next(p for p in mlp.parameters() if p.is_floating_point())
    x = torch.randn(2, 3, inner, generator=torch.Generator().manual_seed(0)).to(param.device, param.dtype)
    was_training = mlp.training
    mlp.eval()  # LoRA dropout off, so both sides are deterministic
    try:
        return torch.equal(type(mlp).forward(mlp, x), _fused_forward(mlp, x))
    finally:
        mlp.train(was_training)


def fuse_swiglu(model: nn.Module) -> int:
    """Patch every SwiGLU MLP of ``model`` whose class passes the probe; returns how many."""
    return patch_where_exact(candidates(model), _computes_swiglu, _fused_forward)


def unfuse_swiglu(model: nn.Module) -> None:
    unpatch(candidates(model))
