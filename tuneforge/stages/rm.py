"""`rm`: a reward model: the base with a one-output sequence-classification head, trained with the
pairwise loss -log sigmoid(r(chosen) - r(rejected)); the eval split reports pairwise accuracy.

Step 5 and 6 of a run: ``load_model`` loads the base as AutoModelForSequenceClassification
(num_labels=1; the head is new and always trained: LoRA/QLoRA save it next to the adapter);
``build_trainer`` is TRL's RewardTrainer fed prompt + answer ids rendered by our renderer.

The run folder is the reward model: ``RUN_DIR/model`` (full, freeze) loads with
``AutoModelForSequenceClassification.from_pretrained``; ``RUN_DIR/adapter`` (lora, qlora) loads
with ``PeftModel.from_pretrained`` on that class built from the base; `tuneforge.rewards.reward_model.load_rm_run`
does either. A ppo/grpo config names it by its run folder, ``reward_funcs: [{model: RUN_DIR}]``
(`tuneforge.rewards.load_reward_model` merges the adapter).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.speed.estimate import StageCost
from tuneforge.stages._base import PAIR_SPEED
from tuneforge.stages._config import StageConfig
from tuneforge.stages._preference import check_columns, stage_fields, trainer_kwargs

DESCRIPTION = "Reward model: sequence-classification head, pairwise loss, pairwise accuracy on eval."
SAMPLE_KIND = "preference"
SPEED = PAIR_SPEED
COST = StageCost(prompt_passes=2, head="score")


class Config(StageConfig):
    name: Literal["rm"] = "rm"
    center_rewards_coefficient: float | None = Field(
        None, ge=0, description="Pull rewards towards 0 (mean squared reward x this), as in TRL."
    )
    disable_dropout: bool = Field(True, description="Turn dropout off in the model.")


def load_model(cfg):
    from transformers import AutoModelForSequenceClassification

    from tuneforge.errors import ConfigError
    from tuneforge.models.load import load_model as load_base
    from tuneforge.rewards.reward_model import score_in_its_own_dtype

    if cfg.compare.prompts:
        raise ConfigError("compare.prompts: a reward model (stage rm) does not generate answers; remove it")
    model = load_base(cfg.model, cfg.method, auto_class=AutoModelForSequenceClassification, num_labels=1)
    for p in model.score.parameters() if hasattr(model, "score") else ():
        p.requires_grad_(True)
    score_in_its_own_dtype(model)
    return model


def _whole_sequences(dataset):
    """RewardTrainer scores whole sequences: prompt + answer, for each side."""
    check_columns(dataset, ("prompt_ids", "chosen_ids", "rejected_ids"), "rm")
    return dataset.map(
        lambda r: {
            "chosen_ids": r["prompt_ids"] + r["chosen_ids"],
            "rejected_ids": r["prompt_ids"] + r["rejected_ids"],
        },
        remove_columns=["prompt_ids"],
    )


def trl_config(config, training_args):
    """TRL's RewardConfig: our TrainingArguments + the stage's fields (data.max_length as max_length)."""
    from trl import RewardConfig

    from tuneforge.training.arguments import trl_arguments

    fields = stage_fields(config.stage)
    return trl_arguments(RewardConfig, training_args, **fields, max_length=config.data.max_length)


def build_trainer(ctx):
    from trl import RewardTrainer

    from tuneforge.stages._mixin import PreferenceMixin

    class Trainer(PreferenceMixin, RewardTrainer):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            return dataset  # whole sequences, from our renderer's ids (_whole_sequences)

    ctx.model.config.pad_token_id = ctx.tokenizer.pad_token_id  # the reward is read at the last non-pad token
    return Trainer(
        **trainer_kwargs(
            ctx,
            args=trl_config(ctx.config, ctx.training_args),
            train_dataset=_whole_sequences(ctx.train_dataset),
            eval_dataset=_whole_sequences(ctx.eval_dataset) if ctx.eval_dataset is not None else None,
        )
    )
