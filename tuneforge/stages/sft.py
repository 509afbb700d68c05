"""`sft`: supervised fine-tuning on conversations; only what the renderer marks is trained."""

from __future__ import annotations

from typing import Literal

from tuneforge.speed.estimate import StageCost
from tuneforge.stages._base import CAUSAL_LM_SPEED, build_causal_lm_trainer
from tuneforge.stages._config import StageConfig

DESCRIPTION = "Supervised fine-tuning on conversations (assistant turns trained)."
SAMPLE_KIND = "conversation"
SPEED = CAUSAL_LM_SPEED
COST = StageCost()


class Config(StageConfig):
    name: Literal["sft"] = "sft"


build_trainer = build_causal_lm_trainer
