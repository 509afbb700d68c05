"""The explicit mapping from the `train:` section to HF TrainingArguments, field by field."""

from __future__ import annotations

from pathlib import Path

from tuneforge.config.load import load_config
from tuneforge.config.schema import TrainConfig
from tuneforge.speed import TRAIN_FIELDS
from tuneforge.train import training_arguments

BASE = {"model": {"name_or_path": "m"}, "data": {"datasets": [{"path": "d.json"}]}}
TRANSLATED = {"resume_from_checkpoint", "warmup_ratio", "warmup_steps", "eval_steps", "report_to"}
TRANSLATED |= TRAIN_FIELDS  # read by tuneforge.speed, not TrainingArguments


def test_every_train_field_reaches_training_arguments(tmp_path):
    overrides = [
        "train.learning_rate=3e-4",
        "train.num_train_epochs=2",
        "train.max_steps=7",
        "train.per_device_train_batch_size=3",
        "train.per_device_eval_batch_size=5",
        "train.gradient_accumulation_steps=4",
        "train.lr_scheduler_type=linear",
        "train.weight_decay=0.1",
        "train.max_grad_norm=0.5",
        "train.optim=sgd",
        "train.seed=7",
        "train.logging_steps=2",
        "train.save_steps=9",
        "train.save_total_limit=3",
        "train.gradient_checkpointing=true",
        "train.dataloader_num_workers=1",
        "train.report_to=[none]",
        "train.neftune_noise_alpha=5",
    ]
    cfg = load_config(None, overrides, data=dict(BASE))
    args = training_arguments(cfg, Path(tmp_path), has_eval=True)
    for name in TrainConfig.model_fields:
        if name in TRANSLATED:
            continue
        ours, theirs = getattr(cfg.train, name), getattr(args, name)
        assert ours == theirs or str(ours) in str(theirs), (name, ours, theirs)
    assert args.output_dir == str(tmp_path)
    assert args.eval_strategy == "steps" and args.eval_steps == 9  # defaults to save_steps
    assert args.report_to == [] or args.report_to in ("none", ["none"])


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
