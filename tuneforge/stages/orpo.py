"""`orpo`: Odds Ratio Preference Optimization: SFT on the chosen answer plus an odds-ratio penalty
on the rejected one, in one stage and without a reference model.

Step 6 of a run: TRL's experimental ORPOTrainer fed our pre-tokenized pairs (`tuneforge.stages._odds`).
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

DESCRIPTION = "ORPO: SFT + odds-ratio preference penalty on pairs, no reference model."
SAMPLE_KIND = "preference"
SPEED = PAIR_SPEED
COST = StageCost(prompt_passes=2)


class Config(StageConfig):
    name: Literal["orpo"] = "orpo"
    beta: float = Field(0.1, gt=0, description="Weight of the odds-ratio term (lambda in the paper).")
    disable_dropout: bool = Field(True, description="Turn dropout off in the model.")


def trl_config(config, training_args):
    """TRL's ORPOConfig: our TrainingArguments + the stage's fields (data.max_length as max_length)."""
    from tuneforge.training.arguments import trl_arguments

    fields = stage_fields(config.stage)
    return trl_arguments(
        experimental_trl("orpo")[0], training_args, **fields, max_length=config.data.max_length
    )


def build_trainer(ctx):
    from tuneforge.stages._odds import COLUMNS, OddsMixin

    class Trainer(OddsMixin, experimental_trl("orpo")[1]):
        pass

    train = check_columns(ctx.train_dataset, COLUMNS, "orpo")
    return Trainer(**trainer_kwargs(ctx, args=trl_config(ctx.config, ctx.training_args), train_dataset=train))
