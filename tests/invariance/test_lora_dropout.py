"""`speed.fused_lora_dropout` on = off: with the same drop masks, a LoRA model whose dropout is fused
into lora_A gives the same loss and gradients as PEFT's own dropout path, and keeps far fewer bytes
for backward."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from tuneforge.config.schema import ModelConfig
from tuneforge.config.train import SpeedConfig
from tuneforge.errors import ConfigError
from tuneforge.methods import METHODS
from tuneforge.models.load import load_model
from tuneforge.models.wrap import wrap
from tuneforge.speed import lora_dropout
from tuneforge.speed.lora_dropout import (
    draw_drops,
    drop_positions,
    dropout_linear,
    fuse_lora_dropout,
    unfuse_lora_dropout,
)
from tuneforge.speed.setup import apply_speedups

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def lora_model(model_dir, method: str = "lora", dropout: float = 0.1, **extra):
    cfg = METHODS.get(method).Config(r=4, lora_alpha=8, lora_dropout=dropout, target_modules=TARGETS, **extra)
    model = wrap(load_model(ModelConfig(name_or_path=str(model_dir)), cfg), cfg)
    with torch.no_grad():  # LoRA B starts at zero, which would hide every gradient below it
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return model


def as_keep(drops: torch.Tensor, shape) -> torch.Tensor:
    """The uint8 keep mask (0 where dropped) that `draw_drops`' answer stands for."""
    if drops.dtype == torch.uint8:
        return drops.view(shape)
    keep = torch.ones(math.prod(shape), dtype=torch.uint8)
    keep[drops.long()] = 0
    return keep.view(shape)


def test_dropout_linear_equals_linear_of_the_masked_input():
    torch.manual_seed(0)
    x = torch.randn(3, 7, 32, requires_grad=True)
    w = torch.randn(4, 32, requires_grad=True)
    g = torch.randn(3, 7, 4)
    torch.manual_seed(1)
    out = dropout_linear(x, w, 0.3)
    out.backward(g)
    got = out.detach(), x.grad.clone(), w.grad.clone()
    x.grad = w.grad = None
    torch.manual_seed(1)
    drops = draw_drops(x.shape, 0.3, x.device)
    assert drops.dtype == torch.int32  # CPU: positions, not a mask
    keep = as_keep(drops, x.shape)
    ref = nn.functional.linear(x * keep / (1 - 0.3), w)
    ref.backward(g)
    for a, b in zip(got, (ref.detach(), x.grad, w.grad), strict=True):
        torch.testing.assert_close(a, b)
    assert 0.2 < 1 - keep.float().mean() < 0.4


def test_drop_rate_follows_p():
    for p in (0.05, 0.5):
        shape = torch.Size([200, 1000])
        keep = as_keep(draw_drops(shape, p, torch.device("cpu")), shape)
        assert set(keep.unique().tolist()) == {0, 1}
        assert abs(1 - keep.float().mean().item() - p) < 0.005
        rows = 1 - keep.float().mean(dim=1)  # no place is favoured: every row near p
        assert rows.sub(p).abs().max() < 6 * (p * (1 - p) / 1000) ** 0.5


def test_positions_and_masks_zero_the_same_elements():
    """The CPU keeps positions, other devices a mask: both name the same dropped elements."""
    torch.manual_seed(0)
    t = torch.randn(6, 50)
    drops = draw_drops(t.shape, 0.2, t.device)
    keep = as_keep(drops, t.shape)
    by_positions = lora_dropout.zero_dropped(t.clone(), drops)
    by_mask = lora_dropout.zero_dropped(t.clone(), keep)
    torch.testing.assert_close(by_positions, t * keep, rtol=0, atol=0)
    torch.testing.assert_close(by_mask, t * keep, rtol=0, atol=0)


def test_drop_positions_over_several_rounds():
    """Drawing the gaps in rounds (forced small here) lists drops as independent as one round does."""
    torch.manual_seed(0)
    n, p = 100_000, 0.05
    for draws in (None, 7):
        pos = drop_positions(n, p, draws)
        assert pos.dtype == torch.int64 and bool((pos[1:] > pos[:-1]).all())
        assert int(pos[0]) >= 0 and int(pos[-1]) < n
        assert abs(len(pos) - n * p) < 6 * (n * p * (1 - p)) ** 0.5
        gaps = torch.diff(pos).float()  # geometric: mean 1/p, P(gap = 1) = p
        assert abs(gaps.mean().item() - 1 / p) < 0.05 / p
        assert abs((gaps == 1).float().mean().item() - p) < 0.01
    assert len(drop_positions(0, p)) == 0


class Recorder:
    """Records every mask the fused path draws, per lora_A, to replay them through PEFT's path."""

    def __init__(self, monkeypatch):
        self.masks: list[torch.Tensor] = []
        real = lora_dropout.draw_drops

        def recording(shape, p, device):
            drops = real(shape, p, device)
            self.masks.append((as_keep(drops, shape), p))
            return drops

        monkeypatch.setattr(lora_dropout, "draw_drops", recording)


class Replay(nn.Module):
    """Stands in for nn.Dropout: applies the next recorded mask."""

    def __init__(self, masks):
        super().__init__()
        self.masks = masks

    def forward(self, x):
        keep, p = self.masks.pop(0)
        return x * keep / (1 - p)


def loss_and_grads(model, ids):
    model.train()
    model.zero_grad()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def test_fused_equals_peft_dropout_with_the_same_masks(tiny_llama_dir, monkeypatch):
    model = lora_model(tiny_llama_dir)
    assert fuse_lora_dropout(model) == 2 * len(TARGETS)  # two layers
    recorder = Recorder(monkeypatch)
    ids = torch.randint(0, 1000, (2, 12), generator=torch.Generator().manual_seed(0))
    fused_loss, fused_grads = loss_and_grads(model, ids)
    masks = list(recorder.masks)
    assert len(masks) == 2 * len(TARGETS)

    unfuse_lora_dropout(model)
    order = []  # the order PEFT calls the dropouts in is the forward order, as the masks were drawn
    for module in model.modules():
        if hasattr(module, "lora_dropout"):
            assert isinstance(module.lora_dropout["default"], nn.Dropout)
            order.append(module)
    replay = Replay(masks)
    for module in order:
        module.lora_dropout["default"] = replay
    loss, grads = loss_and_grads(model, ids)
    assert not replay.masks, "every recorded mask is used once"
    torch.testing.assert_close(fused_loss, loss)
    assert fused_grads.keys() == grads.keys()
    for name in grads:
        assert grads[name].abs().sum() > 0, name
        torch.testing.assert_close(fused_grads[name], grads[name], atol=1e-6, rtol=1e-4, msg=name)


def saved_bytes(model, ids) -> int:
    """Bytes autograd keeps for the transformer body (the logits would swamp a tiny model's body)."""
    storages: dict[int, int] = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    model.train()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model.get_base_model().model(input_ids=ids).last_hidden_state.sum()
    return sum(n for ptr, n in storages.items() if ptr not in params)


def test_fused_dropout_keeps_fewer_bytes_for_backward(tiny_llama_dir):
    model = lora_model(tiny_llama_dir)
    ids = torch.randint(0, 1000, (4, 64), generator=torch.Generator().manual_seed(0))
    plain = saved_bytes(model, ids)
    fuse_lora_dropout(model)
    fused = saved_bytes(model, ids)
    assert fused < 0.75 * plain, (fused, plain)


def test_eval_and_no_grad_paths(tiny_llama_dir):
    model = lora_model(tiny_llama_dir)
    ids = torch.randint(0, 1000, (1, 10), generator=torch.Generator().manual_seed(0))
    model.eval()
    with torch.no_grad():
        before = model(input_ids=ids).logits
    fuse_lora_dropout(model)
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, before)  # eval: no dropout
        model.train()
        assert not torch.allclose(model(input_ids=ids).logits, before)  # training without autograd drops


def test_a_deep_copy_uses_its_own_weights(tiny_llama_dir):
    model = lora_model(tiny_llama_dir)
    fuse_lora_dropout(model)
    twin = copy.deepcopy(model)
    layer = next(m for m in twin.modules() if hasattr(m, "lora_A"))
    assert layer.lora_A["default"].forward.__self__ is layer.lora_A["default"]


def test_speedups_fuse_by_default_and_refuse_when_nothing_fits(tiny_llama_dir):
    plan = apply_speedups(lora_model(tiny_llama_dir), SpeedConfig(), max_length=64)
    assert plan.fused_lora_dropout == 2 * len(TARGETS)
    off = apply_speedups(lora_model(tiny_llama_dir), SpeedConfig(fused_lora_dropout=False), max_length=64)
    assert off.fused_lora_dropout == 0
    with pytest.raises(ConfigError, match="method.lora_dropout > 0"):
        apply_speedups(lora_model(tiny_llama_dir, dropout=0.0), SpeedConfig(fused_lora_dropout=True), 64)
    dora = lora_model(tiny_llama_dir, use_dora=True)
    assert apply_speedups(dora, SpeedConfig(), max_length=64).fused_lora_dropout == 0


def test_qlora_layers_are_fused(tiny_llama_dir):
    model = lora_model(tiny_llama_dir, method="qlora", bits=4)
    assert fuse_lora_dropout(model) == 2 * len(TARGETS)
    ids = torch.randint(0, 1000, (1, 10), generator=torch.Generator().manual_seed(0))
    _, grads = loss_and_grads(model, ids)
    assert all(g.abs().sum() > 0 for g in grads.values())
