"""What the stages share at run time: their `speed:` declarations (`tuneforge.speed.support`), the prompt
data of grpo and ppo, and the causal-LM trainer that `sft` and `pt` both build (their configs' base
is in `tuneforge.stages._config`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuneforge.speed.support import CAUSAL_LM, StageSpeed

if TYPE_CHECKING:
    from tuneforge.training.build import TrainContext
    from tuneforge.training.trainer import TuneforgeTrainer


# the `speed:` batch switches of the stages that train on rendered ids + labels (sft, pt, distill's
# sequence mode): our collator, sampler and chunked loss
CAUSAL_LM_SPEED = CAUSAL_LM
# the pair / unpaired stages on TRL's trainers: their collators pad, so padding-free runs inside the
# decoder; packing would put a pair's sides in different rows
PAIR_SPEED = StageSpeed(
    padding_free="unpad",
    varlen_attention=True,
    longest_first=True,
    group_by_length=True,
    why_not="a preference sample's sides are scored against each other, so samples are not packed into rows",
)
# the stages that generate their own batches (grpo, ppo, distill's token mode)
GENERATING_SPEED = StageSpeed(why_not="it generates its batches while training and orders its prompts itself")


def prepare_prompt_data(cfg, tokenizer, template, sample_kind: str):
    """A rewarded stage's data: prompts (any conversation format), with the reference answer if any."""
    from tuneforge.data.prompts import prepare_prompts

    return prepare_prompts(cfg, tokenizer, template, cfg.stage.answer_column)


def build_causal_lm_trainer(ctx: TrainContext) -> TuneforgeTrainer:
    """Next-token loss on the renderer's labels, batched as the speed plan says (padding-free or
    packed rows, else padding to the longest sample of each batch)."""
    from tuneforge.data.collate import pack_dataset
    from tuneforge.training.trainer import TuneforgeTrainer

    plan = ctx.speed
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
        speed=ctx.speed,
    )
