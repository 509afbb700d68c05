"""`orpo`: Odds Ratio Preference Optimization: SFT on the chosen answer plus an odds-ratio penalty
on the rejected one, in one stage and without a reference model.

Step 6 of a run: TRL's experimental ORPOTrainer fed our pre-tokenized pairs (`tuneforge.stages._odds`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.stages._base import StageConfig
from tuneforge.stages._preference import stage_fields, trl_args

DESCRIPTION = "ORPO: SFT + odds-ratio preference penalty on pairs, no reference model."
SAMPLE_KIND = "preference"


class Config(StageConfig):
    name: Literal["orpo"] = "orpo"
    beta: float = Field(0.1, gt=0, description="Weight of the odds-ratio term (lambda in the paper).")
    disable_dropout: bool = Field(True, description="Turn dropout off in the model.")


def build_trainer(ctx):
    import warnings

    with warnings.catch_warnings():  # TRL warns that the experimental package may change
        warnings.simplefilter("ignore")
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    from tuneforge.stages._odds import COLUMNS, OddsMixin
    from tuneforge.stages._preference import check_columns

    class Trainer(OddsMixin, ORPOTrainer):
        pass

    args = trl_args(ctx, ORPOConfig, **stage_fields(ctx.config.stage), max_length=ctx.config.data.max_length)
    return Trainer(
        model=ctx.model,
        args=args,
        train_dataset=check_columns(ctx.train_dataset, COLUMNS, "orpo"),
        eval_dataset=ctx.eval_dataset,
        processing_class=ctx.tokenizer,
        callbacks=ctx.callbacks,
        optimizer_factory=ctx.optimizer_factory,
    )
