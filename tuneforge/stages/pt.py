"""`pt`: continued pre-training on plain text; every token is trained."""

from __future__ import annotations

from typing import Literal

from tuneforge.stages._base import StageConfig, build_causal_lm_trainer

DESCRIPTION = "Continued pre-training on plain text (every token trained)."
SAMPLE_KIND = "document"


class Config(StageConfig):
    name: Literal["pt"] = "pt"


build_trainer = build_causal_lm_trainer
