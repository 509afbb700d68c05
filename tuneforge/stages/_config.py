"""The base of every stage's config, and the reward fields grpo and ppo share. Light (pydantic and
the reward entry only): the stage registry's interface and the config schema import it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tuneforge.rewards.config import RewardConfig


class StageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RewardedStageConfig(StageConfig):
    """What a stage that samples from prompts and scores the samples (grpo, ppo) is told about rewards."""

    reward_funcs: list[RewardConfig] = Field(
        min_length=1,
        description="Rewards summed per sampled completion: built-ins (exact_match, contains, format, length), "
        "'FILE.py:FUNCTION', {model: FOLDER} (a reward model or an rm run folder) or {judge: URL-or-FOLDER}; "
        "each may carry a weight.",
    )
    answer_column: str | None = Field(
        None,
        description="Column holding the reference answer passed to rewards as `answer` "
        "(default: the row's last assistant turn, e.g. alpaca's output).",
    )

    @model_validator(mode="after")
    def _weights(self):
        if all(r.weight == 0 for r in self.reward_funcs):
            raise ValueError("every reward has weight 0; give at least one a non-zero weight")
        return self
