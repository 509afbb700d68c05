"""`sft`: supervised fine-tuning on conversations; only what the renderer marks is trained."""

from __future__ import annotations

from typing import Literal

from tuneforge.stages._base import StageConfig, build_causal_lm_trainer

DESCRIPTION = "Supervised fine-tuning on conversations (assistant turns trained)."
SAMPLE_KIND = "conversation"


class Config(StageConfig):
    name: Literal["sft"] = "sft"


build_trainer = build_causal_lm_trainer
