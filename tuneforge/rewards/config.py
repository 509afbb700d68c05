"""One entry of ``stage.reward_funcs`` (grpo, ppo): a built-in or user function, a reward model, or
an LLM judge, with its weight. Light: the stage configs import it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

_PARAMS = {"format": "pattern", "length": "target_length"}


class RewardConfig(BaseModel):
    """One reward; a plain string is short for ``{function: STRING}``."""

    model_config = ConfigDict(extra="forbid")

    function: str | None = Field(
        None,
        description="A built-in (exact_match, contains, format, length) or 'FILE.py:FUNCTION', a function "
        "f(completions, **kwargs) -> list of floats (kwargs: prompts, answer, question, ...).",
    )
    model: str | None = Field(
        None,
        description="A reward model: a model folder (AutoModelForSequenceClassification, num_labels=1) or "
        "the run folder of an rm run.",
    )
    judge: str | None = Field(
        None,
        description="An LLM judge: an OpenAI-compatible base URL (http://host:port/v1) or a local model folder.",
    )
    judge_model: str = Field("default", description="Model name sent to the judge endpoint.")
    judge_prompt: str | None = Field(
        None, description="Judge instructions with {question}, {answer} and {completion} placeholders."
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY",
        description="Environment variable holding the judge's API key: a name ending in _API_KEY, or one "
        "listed (comma-separated) in $TUNEFORGE_ALLOWED_KEY_ENV; no other variable is read.",
    )
    weight: float = Field(1.0, description="Weight of this reward in the sum (TRL's reward_weights).")
    pattern: str | None = Field(None, description="format: the regex the whole completion must match.")
    target_length: int | None = Field(
        None, gt=0, description="length: the ideal completion length in characters."
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"function": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_kind(self) -> RewardConfig:
        given = [k for k in ("function", "model", "judge") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of function, model or judge for each reward")
        for fn, param in _PARAMS.items():
            if self.function == fn and getattr(self, param) is None:
                raise ValueError(f"reward {fn!r} needs {param!r}")
        return self

    @property
    def label(self) -> str:
        if self.function:
            return self.function.rpartition(":")[2] if ":" in self.function else self.function
        return f"model:{Path(self.model).name}" if self.model else "judge"
