"""`speed.fused_swiglu` on = off: the patched MLPs give bitwise the same loss and gradients (full
fine-tuning and LoRA), keep fewer bytes for backward, and MLPs of another shape are left alone."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM

from tuneforge.config.schema import ModelConfig
from tuneforge.config.train import SpeedConfig
from tuneforge.errors import ConfigError
from tuneforge.methods import METHODS
from tuneforge.models.load import load_model
from tuneforge.models.wrap import wrap
from tuneforge.speed.setup import apply_speedups
from tuneforge.speed.swiglu import fuse_swiglu, silu_mul, unfuse_swiglu


def grads_of(model, ids) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.train()
    model.zero_grad()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_silu_mul_is_bitwise_the_plain_product():
    gate = torch.randn(4, 33, requires_grad=True)
    up = torch.randn(4, 33, requires_grad=True)
    g = torch.randn(4, 33)
    silu_mul(gate, up).backward(g)
    fused = gate.grad.clone(), up.grad.clone()
    gate.grad = up.grad = None
    (nn.functional.silu(gate) * up).backward(g)
    assert torch.equal(fused[0], gate.grad) and torch.equal(fused[1], up.grad)


def assert_fusing_keeps_the_step(model_dirs, method: str, fuse, unfuse, patched: int) -> None:
    """For each model: the loss and every gradient of one step are bitwise the same after ``fuse``
    (which must patch ``patched`` modules) as before, and again after ``unfuse``."""
    ids = torch.randint(0, 1000, (2, 16), generator=torch.Generator().manual_seed(0))
    for model_dir in model_dirs:
        cfg = METHODS.get(method).Config(**({"lora_dropout": 0.0} if method == "lora" else {}))
        model = wrap(load_model(ModelConfig(name_or_path=str(model_dir)), cfg), cfg)
        with torch.no_grad():  # LoRA B starts at 0 and norms at 1: both would hide differences
            for name, p in model.named_parameters():
                if "lora_B" in name or "norm" in name:
                    p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(2)) * 0.05)
        plain_loss, plain = grads_of(model, ids)
        assert fuse(model) == patched
        loss, fused = grads_of(model, ids)
        assert torch.equal(loss, plain_loss)
        assert fused.keys() == plain.keys() and fused
        for name in plain:
            assert torch.equal(fused[name], plain[name]), name
        unfuse(model)
        assert not any(
            "forward" in m.__dict__ for m in model.modules() if type(m).__name__.endswith(("MLP", "RMSNorm"))
        )


@pytest.mark.parametrize("method", ["full", "lora"])
def test_fused_mlps_give_the_same_training_step(tiny_llama_dir, tiny_qwen2_dir, method):
    assert_fusing_keeps_the_step((tiny_llama_dir, tiny_qwen2_dir), method, fuse_swiglu, unfuse_swiglu, 2)


def saved_bytes(model, ids) -> int:
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model.model(input_ids=ids).last_hidden_state.sum()
    return sum(n for ptr, n in storages.items() if ptr not in params)


def bytes_saved_by(model, fuse) -> int:
    """How many fewer bytes one forward of ``model`` keeps for backward after ``fuse(model)``."""
    ids = torch.randint(0, 1000, (4, 64), generator=torch.Generator().manual_seed(0))
    plain = saved_bytes(model, ids)
    fuse(model)
    return plain - saved_bytes(model, ids)


def test_fused_mlps_keep_fewer_bytes(tiny_llama_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).train()
    tensor = 4 * 64 * model.config.intermediate_size * 4  # one [tokens x intermediate] float tensor
    # trained down_proj (full fine-tuning): SiLU's output and the product are not kept, per layer
    assert bytes_saved_by(model, fuse_swiglu) == 2 * 2 * tensor
    unfuse_swiglu(model)
    for layer in model.model.layers:
        layer.mlp.down_proj.weight.requires_grad_(False)
    # frozen down_proj (LoRA's base layer): the product is not needed, SiLU's output is not kept
    assert bytes_saved_by(model, fuse_swiglu) == 2 * tensor


class OtherMLP(nn.Module):
    """Shaped like SwiGLU but computing something else: the probe must refuse it."""

    def __init__(self, mlp):
        super().__init__()
        self.gate_proj, self.up_proj, self.down_proj, self.act_fn = (
            mlp.gate_proj,
            mlp.up_proj,
            mlp.down_proj,
            mlp.act_fn,
        )

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) + self.up_proj(x))


def test_mlps_of_another_shape_are_left_alone(tiny_llama_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    other = copy.deepcopy(model)
    for layer in other.model.layers:
        layer.mlp = OtherMLP(layer.mlp)
    assert fuse_swiglu(other) == 0
    assert apply_speedups(model, SpeedConfig(), max_length=64).fused_swiglu == 2
    with pytest.raises(ConfigError, match="fused_swiglu"):
        apply_speedups(other, SpeedConfig(fused_swiglu=True), max_length=64)
