"""`dpo`: Direct Preference Optimization on chosen/rejected pairs, with TRL's loss variants.

Step 6 of a run: TRL's DPOTrainer with our pre-tokenized pairs (`tuneforge.data.kinds.preference`)
and our trainer additions (`tuneforge.stages._preference.PreferenceMixin`). The reference model is
the policy with its adapter disabled for LoRA/QLoRA (no second copy), else a frozen copy of the
starting weights; `precompute_ref_log_probs` computes its log-probabilities once before training.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from pydantic import Field

from tuneforge.speed.estimate import StageCost
from tuneforge.stages._base import PAIR_SPEED
from tuneforge.stages._config import StageConfig
from tuneforge.stages._preference import (
    check_columns,
    reference_model,
    stage_fields,
    trainer_kwargs,
)

DESCRIPTION = "Direct Preference Optimization on chosen/rejected pairs (sigmoid, ipo, hinge, robust, ...)."
SAMPLE_KIND = "preference"
SPEED = dataclasses.replace(PAIR_SPEED, chunked_cross_entropy="trl")  # TRL's fused LM head
COST = StageCost(prompt_passes=2, reference_passes=1)
COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids")

LossType = Literal["sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard",
                   "aot", "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm"]  # fmt: skip


class Config(StageConfig):
    name: Literal["dpo"] = "dpo"
    beta: float = Field(0.1, gt=0, description="How far the policy may move from the reference (KL weight).")
    loss_type: list[LossType] = Field(
        default_factory=lambda: ["sigmoid"],
        description="TRL loss variant(s), summed with loss_weights: sigmoid (DPO), ipo, hinge, robust, "
        "exo_pair, nca_pair, bco_pair, sppo_hard, aot, aot_unpaired, apo_zero, apo_down, discopop, sft, "
        "sigmoid_norm.",
    )
    loss_weights: list[float] | None = Field(None, description="Weight of each loss_type (default all 1).")
    label_smoothing: float = Field(
        0.0, ge=0, le=0.5, description="Assumed share of flipped labels (robust, exo_pair, aot)."
    )
    ld_alpha: float | None = Field(
        None, description="LD-DPO: weight of the answer tokens past the shorter answer's length."
    )
    use_weighting: bool = Field(False, description="WPO weighting of pairs by their probability.")
    discopop_tau: float = Field(0.05, gt=0, description="Temperature of the discopop loss.")
    precompute_ref_log_probs: bool = Field(
        False, description="Compute the reference log-probabilities once before training."
    )
    precompute_ref_batch_size: int | None = Field(
        None, gt=0, description="Batch size for that pass (default: the train/eval batch size)."
    )
    disable_dropout: bool = Field(True, description="Turn dropout off in the policy and reference.")


def trl_config(config, training_args):
    """TRL's DPOConfig: our TrainingArguments + the stage's fields (data.max_length as max_length)."""
    from trl import DPOConfig

    from tuneforge.training.arguments import trl_arguments

    return trl_arguments(
        DPOConfig, training_args, **stage_fields(config.stage), max_length=config.data.max_length
    )


def build_trainer(ctx):
    from trl import DPOTrainer

    from tuneforge.stages._mixin import PreferenceMixin

    class Trainer(PreferenceMixin, DPOTrainer):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            return check_columns(dataset, COLUMNS, "dpo")  # tokenized by our renderer already

    cfg = ctx.config.stage
    return Trainer(
        **trainer_kwargs(
            ctx,
            ref_model=None if cfg.precompute_ref_log_probs else reference_model(ctx.model),
            args=trl_config(ctx.config, ctx.training_args),
        )
    )
