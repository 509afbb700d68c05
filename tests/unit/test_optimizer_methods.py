"""The optimiser-side methods really use their optimizer: GaLore and APOLLO keep Adam's state in a
low-rank projection of the target weights' gradients, BAdam updates only the active block and
switches blocks every K steps (and resumes in the block it stopped in); `train.optim=adamw_bnb_8bit`
builds bitsandbytes' 8-bit AdamW on the CPU."""

from __future__ import annotations

import importlib.util

import bitsandbytes as bnb
import pytest
import torch
from transformers import AutoModelForCausalLM, TrainingArguments

from tuneforge.config.schema import ModelConfig
from tuneforge.errors import ConfigError
from tuneforge.methods import METHODS, method_optimizer_factory, method_training_arguments
from tuneforge.models.load import load_model
from tuneforge.models.wrap import wrap
from tuneforge.training.trainer import TuneforgeTrainer


def build(model_dir, name: str, **values):
    cfg = METHODS.get(name).Config(**values)
    return wrap(load_model(ModelConfig(name_or_path=str(model_dir)), cfg), cfg), cfg


def trainer_optimizer(model, cfg, tmp_path, **args):
    targs = TrainingArguments(
        output_dir=str(tmp_path),
        learning_rate=1e-2,
        use_cpu=True,
        report_to="none",
        **{**args, **method_training_arguments(cfg)},
    )
    trainer = TuneforgeTrainer(model=model, args=targs, optimizer_factory=method_optimizer_factory(cfg))
    return trainer.create_optimizer()


def step(model, optim, batch) -> float:
    model.train()
    loss = model(**batch).loss
    loss.backward()
    optim.step()
    optim.zero_grad()
    return loss.item()


@pytest.fixture(scope="module")
def batch(tokenizer) -> dict:
    ids = torch.tensor([tokenizer("GaLore, APOLLO and BAdam save optimizer memory.")["input_ids"]])
    return {"input_ids": ids, "labels": ids.clone()}


@pytest.mark.parametrize("name", ["galore", "apollo"])
def test_low_rank_state_for_targets_only(name, tiny_llama_dir, batch, tmp_path):
    model, cfg = build(tiny_llama_dir, name, rank=4, update_proj_gap=5)
    optim = trainer_optimizer(model, cfg, tmp_path)
    step(model, optim, batch)
    q = model.model.layers[0].self_attn.q_proj.weight  # 64 x 64
    state = optim.state[q]
    assert "projector" in state
    assert min(state["exp_avg"].shape) == 4  # Adam's moments live in the rank-4 projection
    embed = model.get_input_embeddings().weight  # tied with lm_head: not a target
    assert "projector" not in optim.state[embed] and optim.state[embed]["exp_avg"].shape == embed.shape
    assert {g.get("rank") for g in optim.param_groups} == {None, 4}


def test_low_rank_target_list_and_typo(tiny_llama_dir, tmp_path, batch):
    args = method_training_arguments(METHODS.get("galore").Config(target_modules=["q_proj", "v_proj"]))
    assert args["optim"] == "galore_adamw" and args["optim_target_modules"] == ["q_proj", "v_proj"]
    assert "rank=128" in args["optim_args"] and "scale=0.25" in args["optim_args"]
    with pytest.raises(ConfigError, match="'qproj' matches no linear layer.*q_proj"):
        build(tiny_llama_dir, "galore", target_modules=["qproj"])


def test_missing_package_is_a_clear_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "galore_torch" else real(n, *a)
    )
    with pytest.raises(ConfigError, match=r"galore_torch.*pip install 'tuneforge\[optim\]'"):
        method_training_arguments(METHODS.get("galore").Config())


def _layer_params(model, i: int) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if f".layers.{i}." in n}


def _changed(before: dict, model) -> set[str]:
    now = dict(model.named_parameters())
    return {n for n, p in before.items() if not torch.equal(p, now[n].detach())}


def test_badam_updates_only_the_active_block_and_switches(tiny_llama_dir, batch, tmp_path):
    model, cfg = build(tiny_llama_dir, "badam", switch_block_every=2)
    optim = trainer_optimizer(model, cfg, tmp_path)
    everything = {n: p.detach().clone() for n, p in model.named_parameters()}
    step(model, optim, batch)
    layer0 = {n for n in everything if ".layers.0." in n}
    assert _changed(everything, model) == layer0  # one step moved block 0 and nothing else
    step(model, optim, batch)  # the 2nd step ends block 0's turn
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        n for n in everything if ".layers.1." in n
    ]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    step(model, optim, batch)
    assert _changed(before, model) == {n for n in everything if ".layers.1." in n}


def test_badam_resumes_in_the_block_it_stopped_in(tiny_llama_dir, batch, tmp_path):
    model, cfg = build(tiny_llama_dir, "badam", switch_block_every=2)
    optim = trainer_optimizer(model, cfg, tmp_path)
    for _ in range(3):
        step(model, optim, batch)  # now in block 1, one step into it
    saved = optim.state_dict()
    assert saved["badam"] == {"global_step": 3, "active_block": 1, "block_order": []}

    fresh, _ = build(tiny_llama_dir, "badam", switch_block_every=2)
    fresh.load_state_dict(model.state_dict())
    resumed = trainer_optimizer(fresh, cfg, tmp_path)
    resumed.load_state_dict(saved)
    trainable = [n for n, p in fresh.named_parameters() if p.requires_grad]
    assert trainable and all(".layers.1." in n for n in trainable)
    # the Adam moments of block 1 came back with it
    assert all(torch.equal(a["exp_avg"], b["exp_avg"]) for a, b in zip(
        resumed.base_optimizer.state.values(), optim.base_optimizer.state.values(), strict=True))  # fmt: skip


def test_badam_start_block_out_of_range(tiny_llama_dir):
    with pytest.raises(ConfigError, match="start_block=5 but the model has 2 blocks"):
        build(tiny_llama_dir, "badam", start_block=5)


def test_adamw_bnb_8bit_runs_on_cpu(tiny_llama_dir, batch, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    targs = TrainingArguments(
        output_dir=str(tmp_path), learning_rate=3e-3, use_cpu=True, report_to="none", optim="adamw_bnb_8bit"
    )
    optim = TuneforgeTrainer(model=model, args=targs).create_optimizer()
    assert isinstance(optim, bnb.optim.AdamW) and optim.args.optim_bits == 8
    losses = [step(model, optim, batch) for _ in range(8)]
    assert losses[-1] < losses[0] - 0.5
    up = model.model.layers[0].mlp.up_proj.weight  # (HF keeps embeddings in 32 bits on purpose)
    assert optim.state[up]["state1"].dtype == torch.uint8  # the moments are stored in 8 bits
