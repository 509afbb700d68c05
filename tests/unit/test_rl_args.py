"""Our config -> TRL's GRPOConfig, field by field: the train: section arrives unchanged (TRL's own
defaults differ: gradient checkpointing and bf16 on) and every stage field lands on its TRL name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuneforge.config.load import load_config
from tuneforge.errors import ConfigError
from tuneforge.stages.grpo import grpo_arguments
from tuneforge.training.arguments import training_arguments

BASE = {"model": {"name_or_path": "m"}, "data": {"datasets": [{"path": "d.json"}]}}
GRPO = ["stage.name=grpo", "stage.reward_funcs=[exact_match]"]


def _args(tmp_path, *overrides, has_eval=False):
    cfg = load_config(None, [*GRPO, *overrides], data=dict(BASE))
    ta = training_arguments(cfg, Path(tmp_path), has_eval=has_eval)
    return cfg, ta, grpo_arguments(cfg.stage, ta, has_eval=has_eval)


def test_training_arguments_reach_grpo_config(tmp_path):
    _, ta, args = _args(
        tmp_path, "train.learning_rate=3e-6", "train.max_steps=7", "train.logging_steps=2", "train.seed=9"
    )
    for name in ("learning_rate", "max_steps", "logging_steps", "seed", "per_device_train_batch_size",
                 "gradient_accumulation_steps", "save_steps", "output_dir", "remove_unused_columns",
                 "lr_scheduler_type", "optim", "use_cpu", "max_grad_norm", "warmup_steps"):  # fmt: skip
        assert getattr(args, name) == getattr(ta, name), name
    assert args.gradient_checkpointing is False and not args.bf16  # not TRL's defaults
    assert args.report_to == ta.report_to


def test_stage_fields_map_onto_trl_names(tmp_path):
    cfg, _, args = _args(
        tmp_path,
        "stage.num_generations=2",
        "stage.max_completion_length=5",
        "stage.temperature=0.7",
        "stage.top_p=0.9",
        "stage.beta=0.1",
        "stage.epsilon=0.3",
        "stage.num_iterations=2",
        "stage.loss_type=grpo",
        "stage.scale_rewards=none",
        "stage.mask_truncated_completions=true",
        "stage.log_completions=true",
        "stage.reward_funcs=[exact_match, {function: length, target_length: 3, weight: 0.5}]",
        "train.gradient_accumulation_steps=2",
    )
    s = cfg.stage
    for name in ("num_generations", "max_completion_length", "temperature", "top_p", "beta", "epsilon",
                 "num_iterations", "loss_type", "scale_rewards", "mask_truncated_completions",
                 "log_completions"):  # fmt: skip
        assert getattr(args, name) == getattr(s, name), name
    assert args.reward_weights == [1.0, 0.5]
    assert args.steps_per_generation == 2 and args.generation_batch_size == 8


def test_batch_must_hold_whole_groups(tmp_path):
    with pytest.raises(ConfigError, match=r"\(4\) must be a multiple of stage.num_generations \(3\)"):
        _args(tmp_path, "stage.num_generations=3")
    with pytest.raises(ConfigError, match="per_device_eval_batch_size"):
        _args(tmp_path, "train.per_device_eval_batch_size=6", has_eval=True)


def test_grpo_needs_rewards():
    with pytest.raises(ConfigError, match="reward_funcs"):
        load_config(None, ["stage.name=grpo"], data=dict(BASE))


@pytest.mark.parametrize("stage", ["grpo", "ppo"])
def test_rewarded_stages_refuse_rewards_that_all_weigh_nothing(stage):
    with pytest.raises(ConfigError, match="every reward has weight 0"):
        load_config(
            None,
            [f"stage.name={stage}", "stage.reward_funcs=[{function: exact_match, weight: 0}]"],
            data=dict(BASE),
        )
    cfg = load_config(
        None,
        [f"stage.name={stage}", "stage.reward_funcs=[exact_match]", "stage.answer_column=gold"],
        data=dict(BASE),
    )
    assert cfg.stage.answer_column == "gold" and cfg.stage.reward_funcs[0].weight == 1
