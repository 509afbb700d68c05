"""The optional method hooks (extra TrainingArguments, own optimizer, callbacks) reach the trainer."""

from __future__ import annotations

import types

import pytest
import torch
from transformers import AutoModelForCausalLM, TrainerCallback, TrainingArguments

from tuneforge.data.collate import pad_collate
from tuneforge.methods import (
    METHODS,
    method_callbacks,
    method_optimizer_factory,
    method_training_arguments,
)
from tuneforge.training.trainer import TuneforgeTrainer


class _Seen(TrainerCallback):
    def __init__(self):
        self.steps = 0

    def on_step_end(self, args, state, control, **kwargs):
        self.steps += 1


@pytest.fixture
def fake_method(monkeypatch):
    built = {}
    module = types.SimpleNamespace(
        training_arguments=lambda cfg: {"neftune_noise_alpha": 5.0},
        create_optimizer=lambda model, cfg, args: built.setdefault(
            "opt", torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=args.learning_rate)
        ),
        callbacks=lambda cfg, model: [_Seen()],
    )
    monkeypatch.setitem(METHODS._load(), "fake_hooks", module)
    return types.SimpleNamespace(name="fake_hooks"), built


def test_plain_methods_have_no_hooks():
    cfg = METHODS.get("lora").Config()
    assert method_training_arguments(cfg) == {}
    assert method_optimizer_factory(cfg) is None
    assert method_callbacks(cfg, model=None) == []


def test_hooks_reach_the_trainer(fake_method, tiny_llama_dir, tmp_path):
    cfg, built = fake_method
    assert method_training_arguments(cfg) == {"neftune_noise_alpha": 5.0}
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    callbacks = method_callbacks(cfg, model)
    ids = list(range(5, 21))
    trainer = TuneforgeTrainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(tmp_path),
            max_steps=2,
            learning_rate=0.5,
            report_to="none",
            use_cpu=True,
            save_strategy="no",
            per_device_train_batch_size=1,
        ),
        train_dataset=[{"input_ids": ids, "labels": ids}] * 2,
        data_collator=pad_collate(0),
        callbacks=callbacks,
        optimizer_factory=method_optimizer_factory(cfg),
    )
    trainer.train()
    assert isinstance(
        trainer.optimizer.optimizer if hasattr(trainer.optimizer, "optimizer") else trainer.optimizer,
        torch.optim.SGD,
    )
    assert built["opt"].param_groups[0]["initial_lr"] == 0.5  # the run's learning rate reached it
    assert callbacks[0].steps == 2
