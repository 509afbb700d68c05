"""`grpo`: Group Relative Policy Optimization (TRL's GRPOTrainer) on prompts with reward functions.

Data: prompts (`tuneforge.data.prompts`: any conversation format, answer optional; the answer is passed
to reward functions as ``answer``). Rewards: `tuneforge.rewards`. For each prompt the model writes
``num_generations`` completions; each completion's advantage is its reward minus the group's mean
(divided by the group's std with ``scale_rewards: group``). With LoRA/QLoRA the reference model for the
KL term is the base model with the adapter disabled, so no second copy is loaded.

Logged every ``logging_steps`` (progress output, TensorBoard, loss plot): ``reward``, ``reward_std``,
``rewards/<function>/mean`` and ``/std``, ``kl`` (when beta > 0), completion lengths. The last values go
into the manifest's metrics.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from tuneforge.stages._base import GENERATING_SPEED, prepare_prompt_data
from tuneforge.stages._config import RewardedStageConfig

if TYPE_CHECKING:
    from tuneforge.training.build import TrainContext

DESCRIPTION = "GRPO: sample several answers per prompt, reinforce the better-rewarded ones (TRL)."
SAMPLE_KIND = "conversation"
SPEED = dataclasses.replace(GENERATING_SPEED, chunked_cross_entropy="trl")  # TRL's fused LM head
COST = None  # a step is mostly generation: not estimated


class Config(RewardedStageConfig):
    name: Literal["grpo"] = "grpo"
    num_generations: int = Field(4, ge=2, description="Completions sampled per prompt (the group).")
    max_completion_length: int = Field(64, gt=0, description="Tokens generated per completion.")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature for the completions.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling for the completions.")
    beta: float = Field(
        0.04, ge=0, description="KL coefficient against the starting model (0 turns the KL term off)."
    )
    epsilon: float = Field(0.2, gt=0, description="Clipping range of the policy ratio.")
    num_iterations: int = Field(1, gt=0, description="Optimisation passes over each generated batch.")
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo"] = Field(
        "dapo", description="Loss normalisation (TRL's loss_type)."
    )
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group", description="Divide advantages by the std of the group, the batch, or not at all."
    )
    mask_truncated_completions: bool = Field(
        False, description="Leave completions cut at max_completion_length out of the loss."
    )
    log_completions: bool = Field(False, description="Print a table of sampled completions when logging.")


def grpo_arguments(cfg: Config, training_args, has_eval: bool):
    """Our `train:` (via the run's TrainingArguments) and `stage:` mapped onto TRL's GRPOConfig."""
    from trl import GRPOConfig

    from tuneforge.errors import ConfigError
    from tuneforge.training.arguments import trl_arguments

    batch = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
    if batch % cfg.num_generations:
        raise ConfigError(
            f"train.per_device_train_batch_size x gradient_accumulation_steps ({batch}) must be a multiple of "
            f"stage.num_generations ({cfg.num_generations}): each step holds whole groups of completions; "
            f"e.g. set train.per_device_train_batch_size={cfg.num_generations}"
        )
    if has_eval and training_args.per_device_eval_batch_size % cfg.num_generations:
        raise ConfigError(
            f"train.per_device_eval_batch_size ({training_args.per_device_eval_batch_size}) must be a multiple "
            f"of stage.num_generations ({cfg.num_generations})"
        )
    return trl_arguments(
        GRPOConfig,
        training_args,
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        beta=cfg.beta,
        epsilon=cfg.epsilon,
        num_iterations=cfg.num_iterations,
        loss_type=cfg.loss_type,
        scale_rewards=cfg.scale_rewards,
        mask_truncated_completions=cfg.mask_truncated_completions,
        log_completions=cfg.log_completions,
        reward_weights=[r.weight for r in cfg.reward_funcs],
        steps_per_generation=training_args.gradient_accumulation_steps,
        shuffle_dataset=True,
    )


prepare_data = prepare_prompt_data


def build_trainer(ctx: TrainContext):
    from tuneforge.rewards.build import build_rewards
    from tuneforge.stages._grpo_trainer import TuneforgeGRPOTrainer

    cfg: Config = ctx.config.stage
    funcs, processors, _ = build_rewards(cfg.reward_funcs)
    return TuneforgeGRPOTrainer(
        model=ctx.model,
        reward_funcs=funcs,
        args=grpo_arguments(cfg, ctx.training_args, has_eval=ctx.eval_dataset is not None),
        train_dataset=ctx.train_dataset,
        eval_dataset=ctx.eval_dataset,
        processing_class=ctx.tokenizer,
        reward_processing_classes=processors,
        callbacks=ctx.callbacks,
        optimizer_factory=ctx.optimizer_factory,
        speed=ctx.speed,
    )
