"""`speed.fused_rmsnorm` on = off: the patched norms give bitwise the same loss and gradients (full
fine-tuning and LoRA, Llama and Qwen2), keep fewer bytes for backward, and norms that compute
something else are left alone."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM

from tests.invariance.test_swiglu import assert_fusing_keeps_the_step, bytes_saved_by
from tuneforge.config.train import SpeedConfig
from tuneforge.errors import ConfigError
from tuneforge.speed.rmsnorm import _RMSNorm, fuse_rmsnorm, unfuse_rmsnorm
from tuneforge.speed.setup import apply_speedups


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_function_is_bitwise_the_plain_norm(dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 48, generator=g).to(dtype).requires_grad_()
    w = (torch.rand(48, generator=g) + 0.5).to(dtype).requires_grad_()
    up = torch.randn(3, 5, 48, generator=g).to(dtype)
    _RMSNorm.apply(x, x, w, 1e-6).backward(up)
    fused = x.grad.clone(), w.grad.clone()
    x.grad = w.grad = None
    h = x.to(torch.float32)
    plain = w * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)).to(dtype)
    plain.backward(up)
    assert torch.equal(fused[0], x.grad) and torch.equal(fused[1], w.grad)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_fused_norms_give_the_same_training_step(tiny_llama_dir, tiny_qwen2_dir, method):
    # two norms per layer and the final norm
    assert_fusing_keeps_the_step(
        (tiny_llama_dir, tiny_qwen2_dir), method, fuse_rmsnorm, unfuse_rmsnorm, 2 * 2 + 1
    )


def test_fused_norms_keep_fewer_bytes(tiny_llama_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).train()
    # each norm keeps its input and one float per token instead of its input and the normalised copy
    norms = 2 * model.config.num_hidden_layers + 1
    assert bytes_saved_by(model, fuse_rmsnorm) == norms * 4 * 64 * model.config.hidden_size * 4


class ShiftedNorm(nn.Module):
    """Named like an RMSNorm, computing Gemma's ``(1 + weight) * x_hat``: the probe must refuse it."""

    def __init__(self, norm):
        super().__init__()
        self.weight, self.variance_epsilon = norm.weight, norm.variance_epsilon

    def forward(self, x):
        h = x.float()
        return (1 + self.weight) * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.variance_epsilon))


ShiftedNorm.__name__ = "ShiftedRMSNorm"


def test_norms_of_another_formula_are_left_alone(tiny_llama_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    other = copy.deepcopy(model)
    other.model.norm = ShiftedNorm(other.model.norm)
    weights = other.model.norm.weight.detach().clone()
    assert fuse_rmsnorm(other) == 2 * 2  # the layers' norms, not the shifted one
    assert torch.equal(other.model.norm.weight, weights)  # the probe put the weight back
    assert apply_speedups(model, SpeedConfig(), max_length=64).fused_rmsnorm == 5
    for layer in other.model.layers:
        layer.input_layernorm = ShiftedNorm(layer.input_layernorm)
        layer.post_attention_layernorm = ShiftedNorm(layer.post_attention_layernorm)
    unfuse_rmsnorm(other)
    with pytest.raises(ConfigError, match="fused_rmsnorm"):
        apply_speedups(other, SpeedConfig(fused_rmsnorm=True), max_length=64)
