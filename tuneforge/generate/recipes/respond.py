"""`respond`: answer existing prompts with the teacher (sequence-level distillation)."""

from __future__ import annotations

from typing import Literal

from tuneforge.generate.recipes._base import AnsweredConfig, PromptsConfig

DESCRIPTION = "answer existing prompts (a list or a JSON / JSONL file): sequence-level distillation"


class Config(PromptsConfig, AnsweredConfig):
    name: Literal["respond"] = "respond"


def run(cfg: Config, ctx) -> list:
    prompts = ctx.read_prompts(cfg.prompts, cfg.column, "recipe.prompts")[: cfg.limit]
    return ctx.answer(prompts, "answer", cfg.answer_prompt, n=cfg.answers)
