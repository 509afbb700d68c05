"""Shared pieces of stage configs and the causal-LM trainer that `sft` and `pt` both build."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from tuneforge.train import TrainContext
    from tuneforge.trainer import TuneforgeTrainer


class StageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


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
