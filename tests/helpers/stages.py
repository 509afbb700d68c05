"""Build a stage's trainer in-process the way `tuneforge.train.run_training` does, so tests can look at
parameters before and after training."""

from __future__ import annotations

from pathlib import Path

import torch

from tuneforge.config.load import load_config
from tuneforge.data.pipeline import prepare_data
from tuneforge.data.templates import resolve_template
from tuneforge.methods import method_callbacks, method_optimizer_factory
from tuneforge.models.load import load_model, load_tokenizer
from tuneforge.models.wrap import wrap
from tuneforge.stages import STAGES
from tuneforge.train import TrainContext, training_arguments


def build_trainer(cfg_dict: dict, run_dir: Path):
    cfg = load_config(None, [], data=cfg_dict)
    torch.manual_seed(cfg.train.seed)
    stage = STAGES.get(cfg.stage.name)
    tokenizer = load_tokenizer(cfg.model)
    template = resolve_template(cfg.data.template, tokenizer)
    data = getattr(stage, "prepare_data", prepare_data)(cfg, tokenizer, template, stage.SAMPLE_KIND)
    model = wrap(load_model(cfg.model, cfg.method), cfg.method)
    ctx = TrainContext(
        config=cfg,
        run_dir=run_dir,
        model=model,
        tokenizer=tokenizer,
        train_dataset=data.train,
        eval_dataset=data.eval,
        training_args=training_arguments(cfg, run_dir, has_eval=data.eval is not None),
        callbacks=method_callbacks(cfg.method, model),
        optimizer_factory=method_optimizer_factory(cfg.method),
    )
    return stage.build_trainer(ctx)


def snapshot(module: torch.nn.Module) -> dict[str, tuple[bool, torch.Tensor]]:
    return {n: (p.requires_grad, p.detach().clone()) for n, p in module.named_parameters()}


def assert_trained_and_frozen(before: dict, module: torch.nn.Module) -> None:
    """Every trainable parameter changed; every frozen one is unchanged."""
    after = dict(module.named_parameters())
    for name, (trainable, value) in before.items():
        if name not in after:  # removed after training (grpo's KL reference adapter)
            continue
        changed = not torch.equal(value, after[name].detach())
        assert changed == trainable, f"{name}: trainable={trainable} but changed={changed}"
