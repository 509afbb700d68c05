"""`pt`: continued pre-training on plain text; every token is trained."""

from __future__ import annotations

from typing import Literal

from tuneforge.speed.estimate import StageCost
from tuneforge.stages._base import CAUSAL_LM_SPEED, build_causal_lm_trainer
from tuneforge.stages._config import StageConfig

DESCRIPTION = "Continued pre-training on plain text (every token trained)."
SAMPLE_KIND = "document"
SPEED = CAUSAL_LM_SPEED
COST = StageCost()


class Config(StageConfig):
    name: Literal["pt"] = "pt"


build_trainer = build_causal_lm_trainer
