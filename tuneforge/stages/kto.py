"""`kto`: Kahneman-Tversky Optimization on answers labelled good or bad (no pairs needed).

Step 6 of a run: TRL's KTOTrainer with our pre-tokenized samples (`tuneforge.data.kinds.unpaired`).
The KL term is estimated from mismatched (prompt, answer) pairs: each answer is paired with the
previous sample's prompt within a batch (TRL's scheme), so KTO needs a batch of at least 2 and reads
the data in order (the pipeline has shuffled it). The reference model is handled as in `dpo`.
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

DESCRIPTION = "KTO on answers labelled good/bad (unpaired); LLaMA-Factory's kto_tag data works."
SAMPLE_KIND = "unpaired"
# TRL's fused LM head computes the loss; KTO's KL pairs are built from batches read in order
SPEED = dataclasses.replace(
    PAIR_SPEED,
    chunked_cross_entropy="trl",
    longest_first=False,
    group_by_length=False,
    why_not="its KL pairs are built from batches read in order, and its samples are not packed into rows",
)
COST = StageCost(reference_passes=2)  # the reference and the KL batch
COLUMNS = ("prompt_ids", "completion_ids", "label")


class Config(StageConfig):
    name: Literal["kto"] = "kto"
    beta: float = Field(0.1, gt=0, description="How far the policy may move from the reference.")
    loss_type: Literal["kto", "apo_zero_unpaired"] = Field("kto", description="TRL loss variant.")
    desirable_weight: float = Field(1.0, gt=0, description="Weight of the good answers' loss.")
    undesirable_weight: float = Field(1.0, gt=0, description="Weight of the bad answers' loss.")
    precompute_ref_log_probs: bool = Field(
        False, description="Compute the reference log-probabilities once before training."
    )
    disable_dropout: bool = Field(True, description="Turn dropout off in the policy and reference.")


def trl_config(config, training_args):
    """TRL's KTOConfig: our TrainingArguments + the stage's fields (data.max_length as max_length)."""
    from trl import KTOConfig

    from tuneforge.training.arguments import trl_arguments

    # the KL pairs are built per batch in order, so batches are read in order (the pipeline shuffled them)
    order = "sequential" if config.stage.loss_type == "kto" else training_args.train_sampling_strategy
    fields = stage_fields(config.stage)
    return trl_arguments(
        KTOConfig, training_args, **fields, max_length=config.data.max_length, train_sampling_strategy=order
    )


def build_trainer(ctx):
    from trl import KTOTrainer

    from tuneforge.errors import ConfigError
    from tuneforge.stages._mixin import PreferenceMixin

    cfg = ctx.config.stage
    if cfg.loss_type == "kto" and ctx.training_args.per_device_train_batch_size < 2:
        raise ConfigError(
            "stage kto estimates its KL term from the other samples of a batch; set "
            "train.per_device_train_batch_size to 2 or more (or stage.loss_type=apo_zero_unpaired)"
        )

    class Trainer(PreferenceMixin, KTOTrainer):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            dataset = check_columns(dataset, COLUMNS, "kto")  # tokenized by our renderer already
            if not self.calculate_KL:
                return dataset

            def mismatched(batch):  # TRL's pairing: answer i goes with prompt i+1 (within a batch)
                return {"KL_completion_ids": [batch["completion_ids"][-1], *batch["completion_ids"][:-1]]}

            return dataset.map(mismatched, batched=True, batch_size=args.per_device_train_batch_size)

    return Trainer(
        **trainer_kwargs(
            ctx,
            ref_model=None if cfg.precompute_ref_log_probs else reference_model(ctx.model),
            args=trl_config(ctx.config, ctx.training_args),
        )
    )
