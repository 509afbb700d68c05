"""What the shared contract suite (tests/contract/test_methods.py) cannot see of the methods PEFT
lacks: refusals with clear messages, llama_pro's layer indices and KV cache, relora's merge and
restart, lora_drop's selection, and bad config values."""

from __future__ import annotations

import json

import pytest
import torch
from pydantic import ValidationError
from transformers import AutoModelForCausalLM, TrainingArguments

from tuneforge.config.schema import ModelConfig
from tuneforge.errors import ConfigError, TrainingError
from tuneforge.methods import METHODS, method_callbacks
from tuneforge.models.load import load_model
from tuneforge.models.wrap import wrap


def wrapped(method: str, model_dir, **values):
    cfg = METHODS.get(method).Config(**values)
    return wrap(load_model(ModelConfig(name_or_path=str(model_dir)), cfg), cfg), cfg


def test_bitfit_refuses_a_model_without_biases(tiny_llama_dir):
    with pytest.raises(ConfigError, match="LlamaForCausalLM has no biases.*use method.name=lora"):
        wrapped("bitfit", tiny_llama_dir)


@pytest.mark.parametrize(
    "method, values, key, message",
    [
        ("adapter", {"reduction_factor": 0}, "reduction_factor", "greater than 0"),
        ("adapter", {"placement": "middle"}, "placement", "'houlsby' or 'pfeiffer'"),
        ("adapter", {"non_linearity": "swish"}, "non_linearity", "'relu', 'gelu', 'silu' or 'tanh'"),
        ("adapter", {"bottleneck_size": 0}, "bottleneck_size", "greater than 0"),
        ("llama_pro", {"num_expand": 0}, "num_expand", "greater than 0"),
        ("relora", {"merge_every": 0}, "merge_every", "greater than 0"),
        ("relora", {"restart_warmup_steps": -1}, "restart_warmup_steps", "greater than or equal to 0"),
        ("lora_drop", {"keep_ratio": 0}, "keep_ratio", "greater than 0"),
        ("lora_drop", {"keep_ratio": 1.5}, "keep_ratio", "less than or equal to 1"),
        ("lora_drop", {"probe_steps": 0}, "probe_steps", "greater than 0"),
        ("mam", {"num_virtual_tokens": 0}, "num_virtual_tokens", "greater than 0"),
        ("mam", {"scaling": 0}, "scaling", "greater than 0"),
        ("unipelt", {"r": 0}, "r", "greater than 0"),
        ("bitfit", {"r": 8}, "r", "Extra inputs are not permitted"),
    ],
)
def test_bad_values_are_rejected(method, values, key, message):
    with pytest.raises(ValidationError) as err:
        METHODS.get(method).Config(**values)
    assert err.value.errors()[0]["loc"][0] == key
    assert message in str(err.value)


def test_llama_pro_refuses_more_blocks_than_the_model_has(tiny_llama_dir):
    with pytest.raises(ConfigError, match="num_expand=3 but the model has 2 decoder layers"):
        wrapped("llama_pro", tiny_llama_dir, num_expand=3)


def test_llama_pro_renumbers_layers_and_keeps_the_kv_cache_right(tiny_qwen2_dir, tmp_path):
    base = AutoModelForCausalLM.from_pretrained(tiny_qwen2_dir).eval()
    ids = torch.tensor([[1, 42, 7, 99, 3]])
    base_tokens = base.generate(ids, max_new_tokens=6, do_sample=False)
    model, cfg = wrapped("llama_pro", tiny_qwen2_dir, num_expand=2)
    layers = model.model.layers
    # groups of 1 block: a copy after block 0 and after block 1
    assert [getattr(b, "tuneforge_expanded", False) for b in layers] == [False, True, False, True]
    assert [b.self_attn.layer_idx for b in layers] == [0, 1, 2, 3]
    assert model.config.num_hidden_layers == 4 and len(model.config.layer_types) == 4
    model.eval()
    # identity at the start: the expanded model generates exactly what the base does
    assert torch.equal(model.generate(ids, max_new_tokens=6, do_sample=False), base_tokens)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    # cached decoding (each new block writes its own cache slot) equals recomputing from scratch
    cached = model.generate(ids, max_new_tokens=6, do_sample=False)
    seq = ids
    for _ in range(6):
        seq = torch.cat([seq, model(seq).logits[:, -1:].argmax(-1)], dim=1)
    assert torch.equal(cached, seq)
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["num_hidden_layers"] == 4


def _train(model, cfg, tmp_path, steps: int, lr: float = 1e-2):
    from tuneforge.data.collate import pad_collate
    from tuneforge.training.trainer import TuneforgeTrainer

    rows = [{"input_ids": list(range(5 + i, 21 + i)), "labels": list(range(5 + i, 21 + i))} for i in range(4)]
    trainer = TuneforgeTrainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(tmp_path),
            max_steps=steps,
            learning_rate=lr,
            per_device_train_batch_size=2,
            lr_scheduler_type="constant",
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            remove_unused_columns=False,
        ),
        train_dataset=rows,
        data_collator=pad_collate(0),
        callbacks=method_callbacks(cfg, model),
    )
    trainer.train()
    return trainer


def test_relora_merge_and_restart_keeps_the_outputs(tiny_llama_dir):
    from tuneforge.methods.relora import _merge_and_restart

    model, _ = wrapped("relora", tiny_llama_dir, r=2, lora_dropout=0.0)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    ids = torch.tensor([[1, 42, 7, 99, 3]])
    model.eval()
    before = model(ids).logits
    q = model.base_model.model.model.layers[0].self_attn.q_proj
    w0 = q.base_layer.weight.clone()
    params = _merge_and_restart(model)
    assert len(params) == 2 * 7 * 2  # A and B of 7 linear layers in 2 blocks
    assert not torch.equal(q.base_layer.weight, w0)  # the update moved into the base
    assert not q.lora_B["default"].weight.any() and not q.merged
    torch.testing.assert_close(model(ids).logits, before, rtol=0, atol=1e-5)


def test_relora_total_update_exceeds_rank_r_and_the_run_saves_a_plain_model(tiny_llama_dir, tmp_path):
    from tuneforge.methods import final_model

    r = 2
    model, cfg = wrapped(
        "relora", tiny_llama_dir, r=r, lora_dropout=0.0, merge_every=2, restart_warmup_steps=1
    )
    w0 = model.base_model.model.model.layers[0].self_attn.q_proj.base_layer.weight.clone()
    trainer = _train(model, cfg, tmp_path, steps=6, lr=5e-2)
    relora_cb = next(c for c in trainer.callback_handler.callbacks if type(c).__name__ == "_ReLoraCallback")
    assert relora_cb.merges == 2  # at steps 2 and 4; the last cycle merges at save time
    plain = final_model(trainer.model, cfg)
    assert not any("lora" in n for n, _ in plain.named_parameters())
    delta = plain.model.layers[0].self_attn.q_proj.weight.detach() - w0
    assert torch.linalg.matrix_rank(delta, atol=1e-6) > r


def test_relora_refuses_to_resume_after_a_merge(tiny_llama_dir):
    from transformers import TrainerState

    model, cfg = wrapped("relora", tiny_llama_dir, merge_every=2)
    (callback,) = method_callbacks(cfg, model)
    with pytest.raises(TrainingError, match="cannot resume at step 3"):
        callback.on_train_begin(None, TrainerState(global_step=3), None)


def test_lora_drop_select_covers_the_share():
    from tuneforge.methods.lora_drop import _select

    importance = {"a": 5.0, "b": 3.0, "c": 1.0, "d": 1.0}
    assert _select(importance, 0.5) == ["a"]
    assert _select(importance, 0.8) == ["a", "b"]
    assert _select(importance, 1.0) == ["a", "b", "c", "d"]


def test_lora_drop_freezes_and_zeroes_the_dropped_modules(tiny_llama_dir, tmp_path):
    model, cfg = wrapped("lora_drop", tiny_llama_dir, r=2, lora_dropout=0.0, probe_steps=2, keep_ratio=0.5)
    _train(model, cfg, tmp_path, steps=3)
    report = json.loads((tmp_path / "lora_drop.json").read_text())
    assert report["step"] == 2 and len(report["importance"]) == 14
    kept = set(report["kept"])
    assert 0 < len(kept) < 14
    assert sum(report["importance"][k] for k in kept) >= 0.5 * sum(report["importance"].values())
    for name, module in model.named_modules():
        if hasattr(module, "lora_B") and module.lora_B:
            b = module.lora_B["default"].weight
            assert b.requires_grad == (name in kept)
            assert bool(b.any()) == (name in kept)


def test_freeze_by_layer_range(tiny_llama_dir):
    model, cfg = wrapped("freeze", tiny_llama_dir, trainable_layer_range=[1, 1])
    assert cfg.trainable_layers == 0  # the range replaces the last-N default
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in model.named_parameters() if n.startswith("model.layers.1.")}


@pytest.mark.parametrize(
    "values, error, message",
    [
        ({"trainable_layer_range": [2, 1]}, ValidationError, "0 <= first <= last, got \\[2, 1\\]"),
        (
            {"trainable_layer_range": [0, 2]},
            ConfigError,
            "trainable_layer_range=\\[0, 2\\] but the model has 2",
        ),
    ],
)
def test_freeze_layer_range_rejects_bad_ranges(values, error, message, tiny_llama_dir):
    with pytest.raises(error, match=message):
        wrapped("freeze", tiny_llama_dir, **values)


def test_relora_restart_drops_the_optimizer_state_and_rewarms_the_learning_rate(tiny_llama_dir):
    from transformers import TrainerState

    model, cfg = wrapped("relora", tiny_llama_dir, r=2, merge_every=3, restart_warmup_steps=2)
    (callback,) = method_callbacks(cfg, model)
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1.0)
    for p in params:
        p.grad = torch.ones_like(p)
    optim.step()
    assert all(p in optim.state for p in params)
    lrs = []
    for step in (1, 2, 3, 4, 5):
        optim.param_groups[0]["lr"] = 1.0  # what a constant scheduler sets before each callback
        callback.on_step_end(None, TrainerState(global_step=step, max_steps=10), None, optimizer=optim)
        lrs.append(optim.param_groups[0]["lr"])
        if step == 3:
            assert not any(p in optim.state for p in params)  # reset at the merge
    assert lrs == pytest.approx([1.0, 1.0, 1 / 3, 2 / 3, 1.0]), lrs
    assert callback.merges == 1


def test_adapter_pfeiffer_placement_adapts_only_the_mlp(tiny_qwen2_dir):
    model, _ = wrapped(
        "adapter", tiny_qwen2_dir, placement="pfeiffer", bottleneck_size=4, non_linearity="gelu"
    )
    trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    assert {n.split(".adapter.")[0] for n in trainable} == {"model.layers.0.mlp", "model.layers.1.mlp"}
    assert sum(trainable.values()) == 2 * (2 * 64 * 4 + 4 + 64)  # two blocks, d=64, b=4
    assert isinstance(model.model.layers[0].mlp.adapter.act, torch.nn.GELU)
