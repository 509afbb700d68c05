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
    """Next-token loss on the renderer's labels; padding to the longest sample of each batch."""
    from tuneforge.trainer import TuneforgeTrainer, pad_collate

    return TuneforgeTrainer(
        model=ctx.model,
        args=ctx.training_args,
        train_dataset=ctx.train_dataset,
        eval_dataset=ctx.eval_dataset,
        data_collator=pad_collate(ctx.tokenizer.pad_token_id),
        processing_class=ctx.tokenizer,
        callbacks=ctx.callbacks,
        optimizer_factory=ctx.optimizer_factory,
    )
