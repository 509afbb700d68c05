"""`adalora`: adaptive-budget LoRA (Zhang et al. 2023, https://arxiv.org/abs/2303.10512). Adapters
are SVD-shaped (P diag(E) Q) and start at `init_r`; during training the least important singular
values are pruned until the total rank averages `target_r`, so layers that matter keep more rank.

PEFT needs ``update_and_allocate(global_step)`` after every optimizer step and the run's total step
count up front: the ``callbacks`` hook supplies both (`total_step` defaults to the run's steps).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from transformers import TrainerCallback

from tuneforge.errors import ConfigError
from tuneforge.methods._base import no_load_kwargs
from tuneforge.methods._lora_common import TargetFields, apply_peft

DESCRIPTION = "AdaLoRA: LoRA whose rank budget is reallocated to the layers that matter during training."
# PEFT's AdaLoRA trains one adapter at a time; several load for inference only (not offered)
SUPPORTS = {"quantized_base": False, "merge": True, "multi_adapter": False}
# PEFT refuses total_step=None at construction; the callback sets the run's real value at train start
_UNTIL_TRAINING = 10**9


class Config(TargetFields):
    name: Literal["adalora"] = "adalora"
    init_r: int = Field(12, gt=0, description="Rank every adapter starts with.")
    target_r: int = Field(8, gt=0, description="Average rank the budget shrinks to (<= init_r).")
    lora_alpha: int = Field(16, gt=0, description="Scale numerator, as in LoRA.")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the adapter's input (0 <= x < 1).")
    tinit: int = Field(0, ge=0, description="Warm-up steps before any rank is pruned.")
    tfinal: int = Field(0, ge=0, description="Last steps with the final budget fixed (fine-tuning phase).")
    deltaT: int = Field(1, gt=0, description="Steps between two budget reallocations.")
    beta1: float = Field(0.85, gt=0, lt=1, description="EMA factor of the importance (sensitivity) scores.")
    beta2: float = Field(0.85, gt=0, lt=1, description="EMA factor of their uncertainty.")
    orth_reg_weight: float = Field(0.5, ge=0, description="Weight of the orthogonality penalty on P and Q.")
    total_step: int | None = Field(
        None, gt=0, description="Steps the budget schedule spans; none: the run's number of optimizer steps."
    )

    @model_validator(mode="after")
    def _budget(self):
        if self.target_r > self.init_r:
            raise ValueError(f"target_r ({self.target_r}) must not exceed init_r ({self.init_r})")
        if self.total_step is not None:
            _check_schedule(self, self.total_step)
        return self


def _check_schedule(cfg: Config, total_step: int) -> None:
    if cfg.tinit >= total_step - cfg.tfinal:
        raise ConfigError(
            f"method.tinit ({cfg.tinit}) + method.tfinal ({cfg.tfinal}) leave no budgeting phase in "
            f"{total_step} steps; lower them or train longer"
        )


load_kwargs = no_load_kwargs


def apply(model, cfg: Config):
    from peft import AdaLoraConfig

    config = AdaLoraConfig(
        task_type="CAUSAL_LM",
        init_r=cfg.init_r,
        target_r=cfg.target_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.target_modules,
        modules_to_save=cfg.modules_to_save or None,
        tinit=cfg.tinit,
        tfinal=cfg.tfinal,
        deltaT=cfg.deltaT,
        beta1=cfg.beta1,
        beta2=cfg.beta2,
        orth_reg_weight=cfg.orth_reg_weight,
        total_step=cfg.total_step or _UNTIL_TRAINING,
    )
    return apply_peft(model, cfg, config)


def callbacks(cfg: Config, model) -> list:
    return [_RankBudget(cfg, model)]


class _RankBudget(TrainerCallback):
    """Sets AdaLoRA's total_step from the run, then reallocates ranks after each optimizer step
    (while the gradients its importance scores need still exist)."""

    def __init__(self, cfg: Config, model):
        self.cfg, self.model = cfg, model

    def on_train_begin(self, args, state, control, **kwargs):
        total = self.cfg.total_step or state.max_steps
        _check_schedule(self.cfg, total)
        self.model.peft_config[self.model.active_adapter].total_step = total

    def on_optimizer_step(self, args, state, control, **kwargs):
        step = state.global_step + 1  # global_step counts finished steps; this is the next one
        tuner = self.model.base_model
        peft_cfg = self.model.peft_config[self.model.active_adapter]
        # PEFT's final allocation ranks by importance scores gathered in earlier steps; when the
        # first step is already the final one (a 1-step run) there are none yet, so score this step
        if step >= peft_cfg.total_step - peft_cfg.tfinal and not tuner.rankallocator.ipt:
            tuner.rankallocator.update_ipt(tuner.model)
        tuner.update_and_allocate(step)
