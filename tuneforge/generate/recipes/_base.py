"""What every recipe shares: its config's common keys and the sample it returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field


class RecipeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    system: str | None = Field(
        None, description="A system message put first in every generated conversation (and asked with)."
    )
    answer_prompt: str = Field(
        "{{ prompt }}",
        description="How the teacher is asked to answer a generated request (Jinja; `prompt` is the "
        "request). The sample keeps the plain request.",
    )
    limit: int | None = Field(None, gt=0, description="At most this many samples before filtering.")


class AnsweredConfig(BaseModel):
    """A recipe whose requests the teacher then answers (`Context.answer`)."""

    answers: int = Field(
        1,
        ge=1,
        le=64,
        description="Answers asked per request (at the teacher's temperature): with filters.verify or a "
        "judge, those that pass are kept and repeats dropped by dedup (rejection sampling).",
    )


class PromptsConfig(RecipeConfig):
    """A recipe that starts from prompts given inline or in a file."""

    prompts: list[str] | str = Field(description="The prompts: a list, or a JSON / JSONL file.")
    column: str = Field("prompt", description="The file's column holding each prompt.")


@dataclass
class Sample:
    """A generated conversation (OpenAI messages), or for preference data its prompt with a chosen
    and a rejected answer; ``provenance`` says where it came from (teacher, template hash, seed,
    recipe step, judge score...)."""

    messages: list[dict]
    chosen: str | None = None
    rejected: str | None = None
    tools: list[dict] | None = None
    provenance: dict = field(default_factory=dict)

    @property
    def prompt(self) -> str:
        return next((m.get("content") or "" for m in self.messages if m["role"] == "user"), "")

    @property
    def answer(self) -> str:
        if self.chosen is not None:
            return self.chosen
        last = self.messages[-1] if self.messages else {}
        if last.get("role") != "assistant":
            return ""
        if last.get("tool_calls"):
            import json

            return json.dumps([c["function"] for c in last["tool_calls"]], ensure_ascii=False)
        return last.get("content") or ""

    @property
    def text(self) -> str:
        """What de-duplication compares: the request and the answer."""
        return f"{self.prompt}\n{self.answer}"
