"""Every speed switch on = off, through a real training step: one SGD step over the same 8 samples
gives the same loss and the same update with padding-free batches, chunked cross-entropy, dataset
packing, length grouping, gradient checkpointing (with and without activation offloading to the CPU)
and torch.compile as with plain padded batches and the model's own loss; varlen attention, fused
SwiGLU and RMSNorm as without them."""

from __future__ import annotations

import json

import pytest
import torch

from tests.helpers.runs import make_config, write_alpaca

OFF = dict(
    padding_free=False,
    chunked_cross_entropy=False,
    longest_first=False,
    fused_swiglu=False,
    fused_rmsnorm=False,
)


def _one_step(tmp_path, model_dir, data, name: str, switches: dict):
    from transformers import AutoModelForCausalLM

    from tuneforge.config.load import load_config
    from tuneforge.train import run_training

    cfg = make_config(tmp_path / name, model_dir, data, method={"name": "full"})
    del cfg["method"]["r"], cfg["method"]["lora_alpha"]
    cfg["train"].update(
        max_steps=1, per_device_train_batch_size=8, optim="sgd", learning_rate=1.0, max_grad_norm=0.0
    )
    cfg["train"].update(switches)
    run_dir = run_training(load_config(None, data=cfg))
    loss = json.loads((run_dir / "manifest.json").read_text())["metrics"]["train_loss"]
    return loss, dict(AutoModelForCausalLM.from_pretrained(run_dir / "model").named_parameters())


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rows = [
        {"instruction": f"Question number {i}?", "input": "", "output": "yes " * (1 + 5 * (i % 4))}
        for i in range(8)
    ]
    return write_alpaca(tmp_path_factory.mktemp("d") / "d.json", rows)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, tiny_llama_dir, data):
    return _one_step(tmp_path_factory.mktemp("base"), tiny_llama_dir, data, "off", OFF)


@pytest.mark.parametrize(
    "switches",
    [
        {"padding_free": True, "chunked_cross_entropy": True},
        {"padding_free": True, "varlen_attention": True, "chunked_cross_entropy": False},
        {"fused_swiglu": True, "fused_rmsnorm": True, "padding_free": False},
        {"packing": True, "chunked_cross_entropy": False},
        {"group_by_length": True, "padding_free": False, "chunked_cross_entropy": True},
        {},  # the defaults: whatever is auto-enabled must be exact too
        {"gradient_checkpointing": True},
        {"gradient_checkpointing": True, "activation_offloading": True},
        {"torch_compile": True},
    ],
    ids=[
        "padding_free+chunked",
        "varlen_attention",
        "fused_swiglu+rmsnorm",
        "packing",
        "group_by_length",
        "defaults",
        "gradient_checkpointing",
        "activation_offloading",
        "torch_compile",
    ],
)
def test_switch_on_equals_off(tmp_path, tiny_llama_dir, data, baseline, switches):
    loss, params = _one_step(tmp_path, tiny_llama_dir, data, "on", switches)
    base_loss, base_params = baseline
    assert abs(loss - base_loss) < 1e-4, (loss, base_loss)
    for name, p in params.items():
        torch.testing.assert_close(p, base_params[name], atol=2e-6, rtol=1e-4, msg=name)


def test_defaults_turn_on_the_exact_fast_path(tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    from tuneforge.config.train import SpeedConfig
    from tuneforge.speed.setup import apply_speedups

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    plan = apply_speedups(model, SpeedConfig(), max_length=64)
    assert plan.chunked_cross_entropy and plan.padding_free and not plan.packing
    assert plan.varlen_attention and plan.fused_swiglu and plan.fused_rmsnorm


def test_longest_sample_comes_first():
    from tuneforge.data.order import LongestFirstSampler, group_by_length_sampler

    lengths = [5, 80, 3, 9, 200, 7, 4, 6]
    for epoch in (0, 1):
        s = LongestFirstSampler(lengths, seed=1)
        s.set_epoch(epoch)
        order = list(s)
        assert order[0] == 4 and sorted(order) == list(range(8))
    assert list(LongestFirstSampler(lengths, 1)) == list(LongestFirstSampler(lengths, 1))
    for epoch in (0, 1):  # a batch of three: the three longest first, in a seeded random order
        s = LongestFirstSampler(lengths, seed=1, first=3)
        s.set_epoch(epoch)
        order = list(s)
        assert set(order[:3]) == {4, 1, 3} and sorted(order) == list(range(8))
    orders = {tuple(LongestFirstSampler(lengths, seed, first=3))[:3] for seed in range(20)}
    assert len(orders) > 1  # the heaviest batch is shuffled too
    assert sorted(LongestFirstSampler(lengths, 0, first=100)) == list(range(8))  # more than there are
    grouped = list(group_by_length_sampler(lengths, batch_size=2, seed=0))
    assert 4 in grouped[:2] and sorted(grouped) == list(range(8))


def test_first_batch_holds_the_longest_samples(tmp_path, tiny_llama_dir):
    """Through the trainer: step 1's batch is the per-device batch size's longest samples (in
    padding-free rows, the most tokens any batch can have), so memory peaks at step 1."""
    from tests.helpers.runs import make_config, write_alpaca
    from tests.helpers.stages import build_trainer
    from tuneforge.data.order import lengths_of

    rows = [{"instruction": "word " * (i * 7 % 23 + 1), "input": "", "output": f"a{i}"} for i in range(24)]
    cfg = make_config(tmp_path, tiny_llama_dir, write_alpaca(tmp_path / "d.json", rows))
    cfg["train"].update(per_device_train_batch_size=4)
    trainer = build_trainer(cfg, tmp_path / "run")
    lengths = lengths_of(trainer.train_dataset)
    order = list(trainer._get_train_sampler())
    assert sorted(lengths[i] for i in order[:4]) == sorted(lengths)[-4:]
    seen = []
    collate = trainer.data_collator
    trainer.data_collator = lambda features: (
        seen.append([len(f["input_ids"]) for f in features]) or collate(features)
    )
    next(iter(trainer.get_train_dataloader()))
    assert sorted(seen[0]) == sorted(lengths)[-4:]
