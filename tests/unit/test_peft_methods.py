"""What the PEFT-backed methods add beyond the shared contract (tests/contract/test_methods.py):
their optimizers (LoRA+, LoRA-FA), AdaLoRA's budget callback inside a real Trainer, LoftQ's
initialisation, and each Config's refusals."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from transformers import AutoModelForCausalLM, TrainingArguments

from tuneforge.config.schema import ModelConfig
from tuneforge.data.collate import pad_collate
from tuneforge.errors import ConfigError
from tuneforge.methods import METHODS, method_callbacks, method_optimizer_factory
from tuneforge.models.load import load_model
from tuneforge.models.wrap import wrap
from tuneforge.training.trainer import TuneforgeTrainer

SMALL = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0}


def wrapped(name: str, model_dir, **values):
    cfg = METHODS.get(name).Config(**values)
    return wrap(load_model(ModelConfig(name_or_path=str(model_dir)), cfg), cfg), cfg


def args(tmp_path, **kw) -> TrainingArguments:
    base = dict(output_dir=str(tmp_path), learning_rate=1e-3, use_cpu=True, report_to="none")
    return TrainingArguments(**{**base, **kw})


def test_loraplus_trains_b_faster_than_a(tiny_llama_dir, tmp_path):
    model, cfg = wrapped("loraplus", tiny_llama_dir, loraplus_lr_ratio=8, **SMALL)
    optim = method_optimizer_factory(cfg)(model, args(tmp_path, weight_decay=0.01))
    ids = {id(p): n for n, p in model.named_parameters()}
    rates = {}
    for group in optim.param_groups:
        for p in group["params"]:
            rates[".lora_A." in ids[id(p)]] = group["lr"]
    assert rates == {True: 1e-3, False: 8e-3}
    assert sum(len(g["params"]) for g in optim.param_groups) == sum(
        p.requires_grad for p in model.parameters()
    )


def test_lorafa_keeps_a_at_its_start_and_moves_b(tiny_llama_dir, tmp_path):
    model, cfg = wrapped("lorafa", tiny_llama_dir, **SMALL)
    optim = method_optimizer_factory(cfg)(model, args(tmp_path, learning_rate=1e-2))
    before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    ids = torch.arange(5, 21)[None]
    for _ in range(2):
        model(input_ids=ids, labels=ids).loss.backward()
        optim.step()
        optim.zero_grad()
    after = dict(model.named_parameters())
    assert all(torch.equal(after[n], v) for n, v in before.items() if ".lora_A." in n)
    assert all(not torch.equal(after[n], v) for n, v in before.items() if ".lora_B." in n)


@pytest.mark.parametrize("steps", [4, 1])
def test_adalora_budget_runs_inside_the_trainer(steps, tiny_llama_dir, tmp_path):
    """The callback sets total_step from the run and prunes ranks to target_r on average (also when
    the only step is the final allocation)."""
    model, cfg = wrapped("adalora", tiny_llama_dir, init_r=4, target_r=2, lora_dropout=0.0)
    assert cfg.total_step is None
    ids = list(range(5, 21))
    trainer = TuneforgeTrainer(
        model=model,
        args=args(
            tmp_path, max_steps=steps, save_strategy="no", per_device_train_batch_size=2, learning_rate=1e-2
        ),
        train_dataset=[{"input_ids": ids, "labels": ids}] * 8,
        data_collator=pad_collate(0),
        callbacks=method_callbacks(cfg, model),
    )
    trainer.train()
    peft_cfg = model.peft_config["default"]
    assert peft_cfg.total_step == steps
    kept = [sum(mask) for mask in peft_cfg.rank_pattern.values()]
    assert len(kept) == 14 and sum(kept) == 2 * 14  # budget = target_r per layer, spread unevenly


def test_adalora_schedule_that_does_not_fit_the_run_is_refused(tiny_llama_dir, tmp_path):
    model, cfg = wrapped("adalora", tiny_llama_dir, init_r=4, target_r=2, tinit=3, tfinal=2)
    ids = list(range(5, 21))
    trainer = TuneforgeTrainer(
        model=model,
        args=args(tmp_path, max_steps=4, save_strategy="no"),
        train_dataset=[{"input_ids": ids, "labels": ids}] * 4,
        data_collator=pad_collate(0),
        callbacks=method_callbacks(cfg, model),
    )
    with pytest.raises(
        ConfigError, match=r"method.tinit \(3\) \+ method.tfinal \(2\) leave no budgeting phase in 4"
    ):
        trainer.train()


def test_loftq_starts_closer_to_the_float_model_than_the_4bit_base(tiny_llama_dir):
    ids = torch.tensor([[1, 500, 600, 700, 800, 900, 1000, 42]])
    with torch.no_grad():
        reference = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)(input_ids=ids).logits
        model, _ = wrapped("loftq", tiny_llama_dir, r=8, lora_alpha=16, lora_dropout=0.0)
        model.eval()
        start = (model(input_ids=ids).logits - reference).abs().mean()
        with model.disable_adapter():
            quantized = (model(input_ids=ids).logits - reference).abs().mean()
    assert start < 0.9 * quantized, (start, quantized)


def test_loftq_needs_safetensors_weights(tiny_llama_dir, tmp_path):
    from tuneforge.errors import ModelError
    from tuneforge.methods.loftq import _initialise

    model, _ = wrapped("qlora", tiny_llama_dir, **SMALL)
    with pytest.raises(ModelError, match="reads the float weights from the model's safetensors files"):
        _initialise(model, tmp_path)


@pytest.mark.parametrize(
    "method, values, message",
    [
        ("lora", {"init_lora_weights": "loftq"}, "for LoftQ use method.name=loftq"),
        ("lora", {"init_lora_weights": "pissa_niter_x"}, "init_lora_weights must be true, false"),
        ("lora", {"init_lora_weights": "olora", "use_dora": True}, "use_dora cannot be combined"),
        ("lora", {"init_lora_weights": "orthogonal", "r": 5}, "needs an even r"),
        ("qlora", {"init_lora_weights": "pissa"}, "use method.name=loftq"),
        ("dora", {"use_dora": False}, "use_dora"),
        ("pissa", {"pissa_niter": -1}, "greater than or equal to 0"),
        ("loraplus", {"loraplus_lr_ratio": 0}, "greater than 0"),
        ("lorafa", {"use_dora": True}, "use_dora"),
        ("loftq", {"bits": 8}, "bits"),
        ("vera", {"r": 0}, "greater than 0"),
        ("vera", {"target_modules": []}, "at least one module name"),
        ("adalora", {"init_r": 4, "target_r": 8}, "target_r (8) must not exceed init_r (4)"),
        ("adalora", {"tinit": 5, "tfinal": 5, "total_step": 10}, "leave no budgeting phase in 10"),
        (
            "ia3",
            {"target_modules": ["k_proj"], "feedforward_modules": ["down_proj"]},
            "not in target_modules",
        ),
        ("ia3", {"feedforward_modules": ["down_proj"]}, "needs target_modules too"),
        ("prompt_tuning", {"num_virtual_tokens": 0}, "greater than 0"),
        ("prompt_tuning", {"prompt_tuning_init": "TEXT"}, "needs prompt_tuning_init_text"),
        ("prompt_tuning", {"prompt_tuning_init_text": "hi"}, "only used with prompt_tuning_init: TEXT"),
        ("p_tuning", {"encoder_reparameterization_type": "GRU"}, "'MLP' or 'LSTM'"),
        ("prefix_tuning", {"encoder_hidden_size": 32}, "only used with prefix_projection: true"),
    ],
)
def test_bad_values_are_rejected_with_a_clear_message(method, values, message):
    with pytest.raises((ValidationError, ConfigError)) as err:
        METHODS.get(method).Config(**values)
    assert message in str(err.value)


@pytest.mark.parametrize("method", ["vera", "ia3", "adalora"])
def test_unknown_targets_name_the_linear_layers(method, tiny_qwen2_dir):
    cfg = METHODS.get(method).Config(target_modules=["q_proj", "attn"])
    with pytest.raises(
        ConfigError, match="'attn' matches no linear layer.*k_proj, o_proj, q_proj, up_proj, v_proj"
    ):
        wrap(load_model(ModelConfig(name_or_path=str(tiny_qwen2_dir)), cfg), cfg)


def test_lora_options_reach_peft(tiny_llama_dir):
    model, _ = wrapped("lora", tiny_llama_dir, use_rslora=True, init_lora_weights="gaussian", **SMALL)
    peft_cfg = model.peft_config["default"]
    assert peft_cfg.use_rslora and peft_cfg.init_lora_weights == "gaussian"
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    assert layer.scaling["default"] == pytest.approx(8 / 2)  # alpha / sqrt(r)
    assert layer.lora_B["default"].weight.abs().sum() == 0  # gaussian A, zero B: starts at the base


def test_p_tuning_lstm_encoder_count(tiny_llama_dir):
    """Embeddings (n x h), a 2-layer bidirectional LSTM h -> e, then an MLP head 2e -> 2e -> h."""
    model, _ = wrapped(
        "p_tuning",
        tiny_llama_dir,
        num_virtual_tokens=4,
        encoder_reparameterization_type="LSTM",
        encoder_hidden_size=8,
    )
    h, e, n = 64, 8, 4
    lstm = 2 * (4 * e * h + 4 * e * e + 8 * e) + 2 * (4 * e * 2 * e + 4 * e * e + 8 * e)
    head = (2 * e * 2 * e + 2 * e) + (2 * e * h + h)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == n * h + lstm + head
