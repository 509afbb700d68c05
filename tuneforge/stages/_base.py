"""Shared pieces of stage configs (every stage's base; the reward fields `grpo` and `ppo` share) and the
causal-LM trainer that `sft` and `pt` both build."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tuneforge.rewards import RewardConfig

if TYPE_CHECKING:
    from tuneforge.train import TrainContext
    from tuneforge.trainer import TuneforgeTrainer


class StageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RewardedStageConfig(StageConfig):
    """What a stage that samples from prompts and scores the samples (grpo, ppo) is told about rewards."""

    reward_funcs: list[RewardConfig] = Field(
        min_length=1,
        description="Rewards summed per sampled completion: built-ins (exact_match, contains, format, length), "
        "'FILE.py:FUNCTION', {model: FOLDER} (a reward model or an rm run folder) or {judge: URL-or-FOLDER}; "
        "each may carry a weight.",
    )
    answer_column: str | None = Field(
        None,
        description="Column holding the reference answer passed to rewards as `answer` "
        "(default: the row's last assistant turn, e.g. alpaca's output).",
    )

    @model_validator(mode="after")
    def _weights(self):
        if all(r.weight == 0 for r in self.reward_funcs):
            raise ValueError("every reward has weight 0; give at least one a non-zero weight")
        return self


def prepare_prompt_data(cfg, tokenizer, template, sample_kind: str):
    """A rewarded stage's data: prompts (any conversation format), with the reference answer if any."""
    from tuneforge.data.prompts import prepare_prompts

    return prepare_prompts(cfg, tokenizer, template, cfg.stage.answer_column)


def build_causal_lm_trainer(ctx: TrainContext) -> TuneforgeTrainer:
    """Next-token loss on the renderer's labels; the speed switches of `train:` applied
    (`tuneforge.speed.setup`: chunked loss, padding-free or packed rows, else padding to the
    longest sample of each batch)."""
    from tuneforge.speed.collate import pack_dataset
    from tuneforge.speed.setup import apply_speedups
    from tuneforge.trainer import TuneforgeTrainer

    plan = apply_speedups(ctx.model, ctx.config.train, ctx.config.data.max_length)
    train_dataset = ctx.train_dataset
    if plan.packing:
        train_dataset = pack_dataset(train_dataset, ctx.config.data.max_length)
    return TuneforgeTrainer(
        model=ctx.model,
        args=ctx.training_args,
        train_dataset=train_dataset,
        eval_dataset=ctx.eval_dataset,
        data_collator=plan.collator(ctx.tokenizer.pad_token_id),
        processing_class=ctx.tokenizer,
        callbacks=ctx.callbacks,
        optimizer_factory=ctx.optimizer_factory,
        speed=ctx.config.train,
    )
