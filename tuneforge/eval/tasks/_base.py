"""What every eval task config shares, and the result shape every task returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field


class TaskConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    label: str | None = Field(
        None,
        description="Name of this task in reports and metric keys (eval/<label>/<metric>); default: the "
        "task type, or the built-in name (mmlu).",
    )
    limit: int | None = Field(
        None, gt=0, description="Evaluate at most this many rows (per subject for choice)."
    )
    batch_size: int = Field(8, gt=0, description="Rows per forward pass or generate call.")

    @property
    def key(self) -> str:
        return self.label or self.name  # type: ignore[attr-defined]


@dataclass
class TaskResult:
    """`metrics`: the headline numbers (name -> value); `subjects`: per-subject accuracy (choice);
    `samples`: per-row details for the report (prompt, answer, prediction, ...)."""

    metrics: dict[str, float]
    subjects: dict[str, float] = field(default_factory=dict)
    samples: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
