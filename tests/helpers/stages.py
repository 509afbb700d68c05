"""Build a stage's trainer in-process the way `tuneforge.train.run_training` does, so tests can look at
parameters before and after training."""

from __future__ import annotations

from pathlib import Path

import torch

from tuneforge.config.load import load_config
from tuneforge.data.pipeline import prepare_data
from tuneforge.data.templates import resolve_template
from tuneforge.models.load import load_model, load_tokenizer
from tuneforge.models.wrap import wrap
from tuneforge.stages import STAGES
from tuneforge.train import make_context


def build_trainer(cfg_dict: dict, run_dir: Path):
    cfg = load_config(None, [], data=cfg_dict)
    torch.manual_seed(cfg.train.seed)
    stage = STAGES.get(cfg.stage.name)
    tokenizer = load_tokenizer(cfg.model)
    template = resolve_template(cfg.data.template, tokenizer)
    data = getattr(stage, "prepare_data", prepare_data)(cfg, tokenizer, template, stage.SAMPLE_KIND)
    model = wrap(load_model(cfg.model, cfg.method), cfg.method)
    return stage.build_trainer(make_context(cfg, run_dir, model, tokenizer, data.train, data.eval))


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
