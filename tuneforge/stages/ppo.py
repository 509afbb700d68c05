"""`ppo`: Proximal Policy Optimization with a value head, on prompts with reward functions or a reward model.

TRL 1.16 ships no PPO trainer any more, so the loop is ours (`tuneforge.stages._ppo_trainer`, the
formulas in `_ppo_math`); the keys keep the names of TRL's former PPOConfig (num_ppo_epochs,
num_mini_batches, cliprange, cliprange_value, vf_coef, kl_coef, gamma, lam, whiten_rewards,
response_length, temperature, missing_eos_penalty) so its documentation carries over.

Data: prompts, exactly as for `grpo` (`tuneforge.data.prompts`, answer optional). Rewards: the same
``reward_funcs`` as grpo (`tuneforge.rewards`: built-ins, FILE.py:FUNCTION, a reward model or an rm run
folder, an LLM judge), weighted and summed into one score per response, given on its last token.
Each token also pays ``kl_coef`` x its KL to the reference: the base with the adapter disabled for
LoRA/QLoRA and the other adapter methods, a frozen copy of the starting weights for full / freeze.

A step (one optimizer update) trains on ``per_device_train_batch_size x gradient_accumulation_steps``
responses; a rollout generates ``num_mini_batches`` such mini-batches at once and is trained on for
``num_ppo_epochs`` passes, so one rollout lasts ``num_ppo_epochs x num_mini_batches`` steps.

Logged every ``logging_steps`` (progress output, TensorBoard, loss plot, manifest): ``reward``,
``reward_std``, ``rewards/<function>/mean`` and ``/std``, ``kl``, ``policy_loss``, ``value_loss``,
``clipfrac``, ``completions/mean_length``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from tuneforge.stages._base import GENERATING_SPEED, prepare_prompt_data
from tuneforge.stages._config import RewardedStageConfig

if TYPE_CHECKING:
    from tuneforge.training.build import TrainContext

DESCRIPTION = "PPO: sample an answer per prompt, score it, update policy and value head (clipped, GAE)."
SAMPLE_KIND = "conversation"
SPEED = GENERATING_SPEED
COST = None  # a step is mostly generation: not estimated


class Config(RewardedStageConfig):
    name: Literal["ppo"] = "ppo"
    # generation
    response_length: int = Field(64, gt=0, description="Tokens generated per response (at most).")
    temperature: float = Field(
        0.7,
        gt=0,
        description="Sampling temperature; responses are sampled from the whole distribution (no top-k/top-p), "
        "so the rollout's log-probabilities are the policy's.",
    )
    missing_eos_penalty: float | None = Field(
        None,
        ge=0,
        description="Subtracted from the score of a response cut at response_length (no stop token).",
    )
    # PPO
    num_ppo_epochs: int = Field(4, gt=0, description="Passes over each rollout.")
    num_mini_batches: int = Field(
        1,
        gt=0,
        description="Mini-batches (optimizer steps) per pass; the rollout holds this many steps' batches.",
    )
    cliprange: float = Field(0.2, gt=0, description="Clipping range of the policy ratio.")
    cliprange_value: float = Field(
        0.2, gt=0, description="Clipping range of the value prediction around the rollout's value."
    )
    vf_coef: float = Field(0.1, ge=0, description="Weight of the value loss in the loss.")
    kl_coef: float = Field(
        0.05, ge=0, description="Per-token KL penalty against the starting model (0 turns it off)."
    )
    kl_estimator: Literal["k1", "k3"] = Field(
        "k1",
        description="KL estimate per token: k1 = log p - log q; k3 = q/p - 1 - log(q/p), never negative.",
    )
    gamma: float = Field(1.0, ge=0, le=1, description="Discount factor of the rewards.")
    lam: float = Field(
        0.95, ge=0, le=1, description="GAE lambda (bias-variance trade-off of the advantages)."
    )
    whiten_rewards: bool = Field(
        False, description="Scale the per-token rewards to unit variance per rollout."
    )
    disable_dropout: bool = Field(
        True, description="Turn dropout off in the policy, so the rollout's and the update's log-probs agree."
    )


prepare_data = prepare_prompt_data


def rollout_size(cfg: Config, training_args) -> int:
    """Prompts generated at once (per device): every mini-batch of one rollout."""
    per_step = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
    return per_step * cfg.num_mini_batches


def build_trainer(ctx: TrainContext):
    from tuneforge.data.templates import resolve_template
    from tuneforge.errors import ConfigError
    from tuneforge.rewards.build import build_rewards
    from tuneforge.stages._ppo_trainer import TuneforgePPOTrainer

    cfg: Config = ctx.config.stage
    size = rollout_size(cfg, ctx.training_args)
    if len(ctx.train_dataset) < size:
        raise ConfigError(
            f"stage ppo: a rollout takes {size} prompts (train.per_device_train_batch_size x "
            f"gradient_accumulation_steps x stage.num_mini_batches) but the data has {len(ctx.train_dataset)}; "
            "lower those settings or add prompts"
        )
    funcs, processors, weights = build_rewards(cfg.reward_funcs)
    template = resolve_template(ctx.config.data.template, ctx.tokenizer)
    return TuneforgePPOTrainer(
        model=ctx.model,
        args=ctx.training_args,
        ppo=cfg,
        method=ctx.config.method,
        reward_funcs=funcs,
        reward_processing_classes=processors,
        reward_weights=weights,
        stop_tokens=template.stop_tokens,
        train_dataset=ctx.train_dataset,
        eval_dataset=ctx.eval_dataset,
        processing_class=ctx.tokenizer,
        callbacks=ctx.callbacks,
        optimizer_factory=ctx.optimizer_factory,
        speed=ctx.speed,
    )
