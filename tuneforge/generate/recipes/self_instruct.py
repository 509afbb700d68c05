"""`self_instruct`: new requests written from seed examples, a few shown at a time (Self-Instruct):
each round adds its requests to the pool the next round samples from; a request too close to one
already in the pool (ROUGE-L, as Self-Instruct) is not added. Then every new request is answered."""

from __future__ import annotations

import random
from typing import Literal

from pydantic import Field

from tuneforge.generate.recipes._base import AnsweredConfig, RecipeConfig

DESCRIPTION = "new requests from a few seed examples at a time, over rounds (Self-Instruct), then answered"
PROMPT = (
    "Here are some example requests:\n{% for e in examples %}{{ loop.index }}. {{ e }}\n{% endfor %}"
    "Write one new request of the same kind that differs from all of them. "
    'Answer with JSON {"request": "..."} and nothing else.'
)
SCHEMA = {
    "type": "object",
    "properties": {"request": {"type": "string", "minLength": 1}},
    "required": ["request"],
}


class Config(RecipeConfig, AnsweredConfig):
    name: Literal["self_instruct"] = "self_instruct"
    seeds: list[str] | str = Field(description="Seed requests: a list, or a JSON / JSONL file.")
    column: str = Field("prompt", description="The seed file's column.")
    rounds: int = Field(2, ge=1, le=50, description="Rounds of generation.")
    per_round: int = Field(10, ge=1, le=10_000, description="New requests asked for per round.")
    few_shot: int = Field(3, ge=1, le=20, description="Examples shown in each request for a new one.")
    similarity: float = Field(0.7, gt=0, le=1, description="ROUGE-L F1 at which a new request is too close.")
    seed: int = Field(0, description="Which examples each call is shown.")
    prompt: str = Field(PROMPT, description="How a new request is asked for (Jinja; `examples`).")


def run(cfg: Config, ctx) -> list:
    from tuneforge.generate.dedup import drop_near

    pool = ctx.read_prompts(cfg.seeds, cfg.column, "recipe.seeds")
    if not pool:
        from tuneforge.errors import ConfigError

        raise ConfigError("recipe.seeds: give at least one seed request")
    new: list[str] = []
    for round_ in range(cfg.rounds):
        rng = random.Random(cfg.seed * 1000 + round_)
        shown = [rng.sample(pool, min(cfg.few_shot, len(pool))) for _ in range(cfg.per_round)]
        found = ctx.ask_json(
            [ctx.render(cfg.prompt, examples=e) for e in shown], f"requests, round {round_ + 1}", SCHEMA
        )
        candidates = [f["request"].strip() for f in found if f]
        kept, _ = drop_near(pool + candidates, threshold=cfg.similarity, method="rouge_l")
        added = [(pool + candidates)[i] for i in kept if i >= len(pool)]
        ctx.stats["self_instruct: too close to the pool"] += len(candidates) - len(added)
        pool += added
        new += added
    return ctx.answer(new[: cfg.limit], "answer", cfg.answer_prompt, n=cfg.answers)
