"""`topics`: requests written per topic, from a given list or a topic tree the teacher expands
(depth levels of breadth subtopics under the goal), then answered."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.generate.recipes._base import AnsweredConfig, RecipeConfig

DESCRIPTION = "requests per topic (a list, or a tree the teacher expands), then answered"
SUBTOPICS_PROMPT = (
    "We are collecting training data for this goal: {{ goal }}\n"
    'List {{ breadth }} distinct subtopics of "{{ topic }}" for it. '
    "Answer with a JSON array of {{ breadth }} short strings and nothing else."
)
QUESTIONS_PROMPT = (
    "We are collecting training data for this goal: {{ goal }}\n"
    'Write {{ count }} diverse, self-contained requests a user might send about "{{ topic }}". '
    "Answer with a JSON array of {{ count }} strings and nothing else."
)
SCHEMA = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}


class Config(RecipeConfig, AnsweredConfig):
    name: Literal["topics"] = "topics"
    goal: str = Field(description="What the model should learn to do, in a sentence.")
    topics: list[str] = Field(default_factory=list, description="The topics; none: the goal is the root.")
    depth: int = Field(0, ge=0, le=4, description="Levels of subtopics the teacher adds below each topic.")
    breadth: int = Field(3, ge=1, le=50, description="Subtopics per topic and level.")
    per_topic: int = Field(5, ge=1, le=100, description="Requests written per leaf topic.")
    subtopics_prompt: str = Field(SUBTOPICS_PROMPT, description="How subtopics are asked for (Jinja).")
    questions_prompt: str = Field(QUESTIONS_PROMPT, description="How requests are asked for (Jinja).")


def run(cfg: Config, ctx) -> list:
    level = [[t] for t in (cfg.topics or [cfg.goal])]  # topic paths
    for depth in range(cfg.depth):
        users = [
            ctx.render(cfg.subtopics_prompt, goal=cfg.goal, topic=p[-1], breadth=cfg.breadth) for p in level
        ]
        found = ctx.ask_json(users, f"subtopics, level {depth + 1}", SCHEMA)
        level = [
            [*p, str(s)] for p, subs in zip(level, found, strict=True) if subs for s in subs[: cfg.breadth]
        ]
    users = [ctx.render(cfg.questions_prompt, goal=cfg.goal, topic=p[-1], count=cfg.per_topic) for p in level]
    lists = ctx.ask_json(users, "requests", SCHEMA)
    prompts, where = [], []
    for path, requests in zip(level, lists, strict=True):
        for r in (requests or [])[: cfg.per_topic]:
            prompts.append(str(r))
            where.append({"topic": " > ".join(path)})
    if cfg.limit:
        prompts, where = prompts[: cfg.limit], where[: cfg.limit]
    return ctx.answer(prompts, "answer", cfg.answer_prompt, where, n=cfg.answers)
