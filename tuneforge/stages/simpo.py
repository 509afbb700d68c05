"""`simpo`: Simple Preference Optimization: a length-normalised margin between the chosen and the
rejected answer's log-probabilities, no reference model.

Step 6 of a run: TRL's experimental CPOTrainer with ``loss_type="simpo"`` fed our pre-tokenized pairs
(`tuneforge.stages._odds`). ``cpo_alpha`` > 0 adds CPO's NLL term on the chosen answer (the
renderer's labels: the answer only).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.stages._base import StageConfig
from tuneforge.stages._preference import stage_fields, trl_args

DESCRIPTION = "SimPO: length-normalised reward margin on pairs, no reference model."
SAMPLE_KIND = "preference"


class Config(StageConfig):
    name: Literal["simpo"] = "simpo"
    beta: float = Field(2.0, gt=0, description="Reward scale (beta in the SimPO paper).")
    simpo_gamma: float = Field(0.5, ge=0, description="Target reward margin (gamma in the paper).")
    cpo_alpha: float = Field(0.0, ge=0, description="Weight of an NLL term on the chosen answer (CPO-SimPO).")
    label_smoothing: float = Field(0.0, ge=0, le=0.5, description="Assumed share of flipped labels.")
    disable_dropout: bool = Field(True, description="Turn dropout off in the model.")


def _experimental():
    import warnings

    with warnings.catch_warnings():  # TRL warns that the experimental package may change
        warnings.simplefilter("ignore")
        from trl.experimental.cpo import CPOConfig, CPOTrainer
    return CPOConfig, CPOTrainer


def trl_config(config, training_args):
    """TRL's CPOConfig: our TrainingArguments + the stage's fields (data.max_length as max_length)."""
    fields = stage_fields(config.stage)
    return trl_args(
        training_args, _experimental()[0], **fields, loss_type="simpo", max_length=config.data.max_length
    )


def build_trainer(ctx):
    CPOTrainer = _experimental()[1]
    from tuneforge.stages._odds import COLUMNS, PairMixin
    from tuneforge.stages._preference import check_columns

    class Trainer(PairMixin, CPOTrainer):
        pass

    return Trainer(
        model=ctx.model,
        args=trl_config(ctx.config, ctx.training_args),
        train_dataset=check_columns(ctx.train_dataset, COLUMNS, "simpo"),
        eval_dataset=ctx.eval_dataset,
        processing_class=ctx.tokenizer,
        callbacks=ctx.callbacks,
        optimizer_factory=ctx.optimizer_factory,
    )
