"""`relora`: LoRA whose update is merged into the base every ``merge_every`` optimizer steps and
then restarted (Lialin et al. 2023, ReLoRA, https://arxiv.org/abs/2307.05695), so the sum of the
merged low-rank updates can exceed rank ``r``.

At each restart (a `transformers.TrainerCallback`, the ``callbacks`` method hook): every LoRA
layer folds ``scale * B @ A`` into its base weight, ``A`` is re-drawn (Kaiming) and ``B`` zeroed
(so the outputs do not jump), the optimizer state of the LoRA parameters is dropped, and the
learning rate ramps up again from 0 over ``restart_warmup_steps`` steps (ReLoRA's jagged
schedule, applied on top of the run's own scheduler).

What the run saves: the base itself changed, so a LoRA adapter alone would be wrong. The last
cycle is merged as well (``final_model``) and the run saves the whole model in ``model/``, like
`full`; `chat` and `export` use it as is. Checkpoints hold only the PEFT adapter, so a run cannot
resume once a merge has happened (it stops with a message instead of training from a wrong base).
"""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import Field
from transformers import TrainerCallback

from tuneforge.errors import TrainingError
from tuneforge.methods._base import no_load_kwargs
from tuneforge.methods._lora_common import LoraFields, apply_lora

log = logging.getLogger(__name__)

DESCRIPTION = "ReLoRA: LoRA merged into the base and restarted every N steps; the run saves a full model."
SUPPORTS = {"quantized_base": False, "merge": True, "multi_adapter": False}


class Config(LoraFields):
    name: Literal["relora"] = "relora"
    merge_every: int = Field(
        100, gt=0, description="Optimizer steps between merges of the LoRA update into the base."
    )
    restart_warmup_steps: int = Field(
        10,
        ge=0,
        description="After each merge the learning rate ramps from 0 back to the schedule's value over "
        "this many steps (0: no re-warmup).",
    )


load_kwargs = no_load_kwargs


def apply(model, cfg: Config):
    return apply_lora(model, cfg)


def _lora_layers(model) -> list:
    from peft.tuners.lora import LoraLayer

    return [m for m in model.modules() if isinstance(m, LoraLayer)]


def _merge_and_restart(model) -> list:
    """Fold every active LoRA update into its base weight and start the factors afresh; returns
    the LoRA parameters that were re-initialised."""
    import torch

    restarted = []
    with torch.no_grad():
        for layer in _lora_layers(model):
            for name in layer.active_adapters:
                if name not in layer.lora_A:
                    continue
                layer.merge(adapter_names=[name])
                # the merged update is now part of the base weight: forget it was merged
                layer.merged_adapters.clear()
                layer.reset_lora_parameters(name, init_lora_weights=True)
                restarted += [layer.lora_A[name].weight, layer.lora_B[name].weight]
    return restarted


class _ReLoraCallback(TrainerCallback):
    def __init__(self, cfg: Config, model):
        self.cfg = cfg
        self.model = model
        self.last_restart: int | None = None
        self.merges = 0

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step >= self.cfg.merge_every:
            raise TrainingError(
                f"method 'relora' cannot resume at step {state.global_step}: merges into the base happened "
                "before it and checkpoints hold only the LoRA adapter; start the run again without "
                "train.resume_from_checkpoint"
            )

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):
        step = state.global_step
        if step % self.cfg.merge_every == 0 and step < state.max_steps:
            params = _merge_and_restart(self.model)
            inner = getattr(optimizer, "optimizer", optimizer)
            if inner is not None:
                for p in params:
                    inner.state.pop(p, None)
            self.last_restart = step
            self.merges += 1
            log.info("relora: merged the LoRA update into the base at step %d (merge %d)", step, self.merges)
        warm = self.cfg.restart_warmup_steps
        if optimizer is not None and self.last_restart is not None and step - self.last_restart < warm:
            # the scheduler has set this step's learning rate already; scale it for the next step
            factor = (step - self.last_restart + 1) / (warm + 1)
            for group in optimizer.param_groups:
                group["lr"] *= factor


def callbacks(cfg: Config, model) -> list:
    return [_ReLoraCallback(cfg, model)]


def final_model(model, cfg: Config):
    """The base with every cycle merged in, as a plain transformers model."""
    return model.merge_and_unload()
