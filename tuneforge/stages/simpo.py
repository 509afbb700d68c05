"""`simpo`: Simple Preference Optimization: a length-normalised margin between the chosen and the
rejected answer's log-probabilities, no reference model.

Step 6 of a run: TRL's experimental CPOTrainer with ``loss_type="simpo"`` fed our pre-tokenized pairs
(`tuneforge.stages._odds`). ``cpo_alpha`` > 0 adds CPO's NLL term on the chosen answer (the
renderer's labels: the answer only).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.speed.estimate import StageCost
from tuneforge.stages._base import PAIR_SPEED
from tuneforge.stages._config import StageConfig
from tuneforge.stages._preference import (
    check_columns,
    experimental_trl,
    stage_fields,
    trainer_kwargs,
)

DESCRIPTION = "SimPO: length-normalised reward margin on pairs, no reference model."
SAMPLE_KIND = "preference"
SPEED = PAIR_SPEED
COST = StageCost(prompt_passes=2)


class Config(StageConfig):
    name: Literal["simpo"] = "simpo"
    beta: float = Field(2.0, gt=0, description="Reward scale (beta in the SimPO paper).")
    simpo_gamma: float = Field(0.5, ge=0, description="Target reward margin (gamma in the paper).")
    cpo_alpha: float = Field(0.0, ge=0, description="Weight of an NLL term on the chosen answer (CPO-SimPO).")
    label_smoothing: float = Field(0.0, ge=0, le=0.5, description="Assumed share of flipped labels.")
    disable_dropout: bool = Field(True, description="Turn dropout off in the model.")


def trl_config(config, training_args):
    """TRL's CPOConfig: our TrainingArguments + the stage's fields (data.max_length as max_length)."""
    from tuneforge.training.arguments import trl_arguments

    fields = {**stage_fields(config.stage), "loss_type": "simpo"}
    return trl_arguments(
        experimental_trl("cpo")[0], training_args, **fields, max_length=config.data.max_length
    )


def build_trainer(ctx):
    from tuneforge.stages._odds import COLUMNS, PairMixin

    class Trainer(PairMixin, experimental_trl("cpo")[1]):
        pass

    train = check_columns(ctx.train_dataset, COLUMNS, "simpo")
    return Trainer(**trainer_kwargs(ctx, args=trl_config(ctx.config, ctx.training_args), train_dataset=train))
