"""The explicit mapping from the `train:` section to HF TrainingArguments, field by field, exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers.trainer_utils import IntervalStrategy, SchedulerType
from transformers.training_args import OptimizerNames

from tuneforge.config.load import load_config
from tuneforge.config.train import TrainConfig
from tuneforge.training.arguments import NOT_TRAINING_ARGUMENTS, training_arguments

BASE = {"model": {"name_or_path": "m"}, "data": {"datasets": [{"path": "d.json"}]}}

# every `train:` field: the override that sets a non-default value, and (TrainingArguments field, the
# exact value it must hold); a new field without a row fails test_every_field_has_a_row
ROWS = {
    "learning_rate": ("3e-4", "learning_rate", 3e-4),
    "num_train_epochs": ("2", "num_train_epochs", 2.0),
    "max_steps": ("7", "max_steps", 7),
    "per_device_train_batch_size": ("3", "per_device_train_batch_size", 3),
    "per_device_eval_batch_size": ("5", "per_device_eval_batch_size", 5),
    "gradient_accumulation_steps": ("4", "gradient_accumulation_steps", 4),
    "lr_scheduler_type": ("linear", "lr_scheduler_type", SchedulerType.LINEAR),
    "warmup_ratio": ("0.25", "warmup_steps", 0.25),
    "warmup_steps": (None, "warmup_steps", 0.25),  # 0 here: the ratio's row gives the value
    "weight_decay": ("0.1", "weight_decay", 0.1),
    "max_grad_norm": ("0.5", "max_grad_norm", 0.5),
    "optim": ("sgd", "optim", OptimizerNames.SGD),
    "seed": ("7", "seed", 7),
    "logging_steps": ("2", "logging_steps", 2),
    "save_steps": ("9", "save_steps", 9),
    "save_total_limit": ("3", "save_total_limit", 3),
    "eval_steps": ("3", "eval_steps", 3),
    "bf16": ("true", "bf16", True),
    "fp16": (None, "fp16", False),  # both on is refused (test_config)
    "gradient_checkpointing": ("true", "gradient_checkpointing", True),
    "gradient_checkpointing_kwargs": (
        "{use_reentrant: false}",
        "gradient_checkpointing_kwargs",
        {"use_reentrant": False},
    ),
    "report_to": ("[none]", "report_to", []),
    "dataloader_num_workers": ("1", "dataloader_num_workers", 1),
    "neftune_noise_alpha": ("5", "neftune_noise_alpha", 5.0),
    "torch_compile": ("true", "torch_compile", True),
    "use_liger_kernel": (None, "use_liger_kernel", False),  # true needs a CUDA GPU
    "metric_for_best_model": ("loss", "metric_for_best_model", "loss"),
    "greater_is_better": ("true", "greater_is_better", True),
    "load_best_model_at_end": ("true", "load_best_model_at_end", True),
}


def test_every_field_has_a_row():
    assert set(TrainConfig.model_fields) - NOT_TRAINING_ARGUMENTS | {"warmup_ratio"} == set(ROWS)


def test_every_train_field_reaches_training_arguments_exactly(tmp_path):
    overrides = [f"train.{name}={value}" for name, (value, _, _) in ROWS.items() if value is not None]
    cfg = load_config(None, overrides, data=dict(BASE))
    args = training_arguments(cfg, Path(tmp_path), has_eval=True)
    for name, (_, theirs, expected) in ROWS.items():
        got = getattr(args, theirs)
        assert got == expected and type(got) is type(expected), (name, theirs, got, expected)
    assert args.output_dir == str(tmp_path)
    assert args.eval_strategy == IntervalStrategy.STEPS and args.save_strategy == "steps"


def test_a_combination_transformers_refuses_is_a_one_line_error(tmp_path):
    from tuneforge.errors import ConfigError

    cfg = load_config(
        None,
        ["train.load_best_model_at_end=true", "train.save_steps=9", "train.eval_steps=6"],
        data=dict(BASE),
    )
    with pytest.raises(ConfigError, match="^train: .*round multiple of the evaluation steps"):
        training_arguments(cfg, Path(tmp_path), has_eval=True)


def test_eval_steps_default_to_save_steps(tmp_path):
    cfg = load_config(None, ["train.save_steps=9"], data=dict(BASE))
    assert training_arguments(cfg, Path(tmp_path), has_eval=True).eval_steps == 9


@pytest.mark.parametrize("section", ["speed", "scale"])
def test_speed_and_scale_never_reach_training_arguments(section, tmp_path):
    """Their fields are tuneforge's own: none is a TrainingArguments field under the same name that
    would silently take a default (fsdp / deepspeed come from scale.engine explicitly)."""
    cfg = load_config(None, [], data=dict(BASE))
    args = training_arguments(cfg, Path(tmp_path), has_eval=False)
    for name in type(getattr(cfg, section)).model_fields:
        assert not hasattr(args, name) or name in {"activation_offloading"}, name


def test_warmup_ratio_and_steps(tmp_path):
    cfg = load_config(None, ["train.warmup_ratio=0.1"], data=dict(BASE))
    assert training_arguments(cfg, Path(tmp_path), has_eval=False).warmup_steps == 0.1
    cfg = load_config(None, ["train.warmup_ratio=0.1", "train.warmup_steps=5"], data=dict(BASE))
    args = training_arguments(cfg, Path(tmp_path), has_eval=False)
    assert args.warmup_steps == 5 and args.eval_strategy == "no"


def test_optim_names_are_checked():
    import pytest

    from tuneforge.errors import ConfigError

    cfg = load_config(None, ["train.optim=adamw_bnb_8bit"], data=dict(BASE))
    assert cfg.train.optim == "adamw_bnb_8bit"
    with pytest.raises(ConfigError, match="train.optim.*unknown optimizer 'adamw_bnb8bit'.*adamw_bnb_8bit"):
        load_config(None, ["train.optim=adamw_bnb8bit"], data=dict(BASE))
