"""The explicit mapping from our config onto each preference stage's TRL config, field by field:
every TrainingArguments field passes unchanged (TRL's own defaults, e.g. a learning rate of 1e-6,
never apply), every stage field reaches the TRL field of the same name, and what a stage fixes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tuneforge.config.load import load_config
from tuneforge.stages import STAGES
from tuneforge.training.arguments import training_arguments

BASE = {"model": {"name_or_path": "m"}, "data": {"datasets": [{"path": "d.json"}], "max_length": 77}}
# non-default values for every stage field
STAGE_VALUES = {
    "dpo": {"beta": 0.3, "loss_type": ["ipo", "sft"], "loss_weights": [1.0, 0.5], "label_smoothing": 0.1,
            "ld_alpha": 0.5, "use_weighting": True, "discopop_tau": 0.1, "precompute_ref_log_probs": True,
            "precompute_ref_batch_size": 3, "disable_dropout": False},
    "kto": {"beta": 0.2, "loss_type": "kto", "desirable_weight": 1.5, "undesirable_weight": 0.7,
            "precompute_ref_log_probs": True, "disable_dropout": False},
    "orpo": {"beta": 0.25, "disable_dropout": False},
    "simpo": {"beta": 2.5, "simpo_gamma": 0.8, "cpo_alpha": 0.1, "label_smoothing": 0.1, "disable_dropout": False},
    "rm": {"center_rewards_coefficient": 0.01, "disable_dropout": False},
}  # fmt: skip
FIXED = {"simpo": {"loss_type": "simpo"}, "kto": {"train_sampling_strategy": "sequential"}}


@pytest.mark.parametrize("stage", sorted(STAGE_VALUES))
def test_every_field_reaches_the_trl_config(stage, tmp_path):
    values = STAGE_VALUES[stage]
    assert set(values) == set(STAGES.get(stage).Config.model_fields) - {"name"}, "test every field"
    data = {**BASE, "stage": {"name": stage, **values}}
    cfg = load_config(None, ["train.learning_rate=3e-4", "train.per_device_train_batch_size=3"], data=data)
    ta = training_arguments(cfg, Path(tmp_path), has_eval=False)
    trl = STAGES.get(stage).trl_config(cfg, ta)
    fixed = FIXED.get(stage, {})
    for f in dataclasses.fields(ta):
        if f.init and f.name not in fixed:
            assert getattr(trl, f.name) == getattr(ta, f.name), f.name
    assert trl.learning_rate == 3e-4 and trl.per_device_train_batch_size == 3
    for name, value in values.items():
        assert getattr(trl, name) == value, name
    for name, value in fixed.items():
        assert getattr(trl, name) == value, name
    assert trl.max_length == 77
