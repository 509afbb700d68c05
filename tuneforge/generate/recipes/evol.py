"""`evol`: prompts made harder and broader by Evol-Instruct's operators (in-depth: add
constraints, deepen, concretize, more reasoning steps; in-breadth: a new prompt of the same
domain), a round at a time, operators taken in turn; an evolved prompt that is empty or the same
as its parent is eliminated. Then the evolved prompts are answered."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.generate.recipes._base import AnsweredConfig, PromptsConfig

DESCRIPTION = "prompts evolved by Evol-Instruct's deepening and broadening operators, then answered"
OPERATORS = {
    "constraints": "Add one more constraint or requirement to it.",
    "deepen": "Make it ask about the subject in more depth.",
    "concretize": "Replace general concepts with more specific ones.",
    "reasoning": "Make it require explicit multi-step reasoning.",
    "breadth": "Write a brand-new prompt of the same domain but rarer and different in topic.",
}
PROMPT = (
    "Rewrite the prompt below into a more difficult version that a human can still understand and answer. "
    "{{ instruction }}\nPrompt: {{ prompt }}\n"
    'Answer with JSON {"prompt": "..."} and nothing else.'
)
SCHEMA = {
    "type": "object",
    "properties": {"prompt": {"type": "string", "minLength": 1}},
    "required": ["prompt"],
}


class Config(PromptsConfig, AnsweredConfig):
    name: Literal["evol"] = "evol"
    rounds: int = Field(1, ge=1, le=10, description="Rounds of evolution.")
    operators: list[Literal["constraints", "deepen", "concretize", "reasoning", "breadth"]] = Field(
        default_factory=lambda: list(OPERATORS), description="The operators, taken in turn."
    )
    keep_all_rounds: bool = Field(False, description="Answer every round's prompts, not only the last.")
    prompt: str = Field(PROMPT, description="How a prompt is evolved (Jinja; `instruction`, `prompt`).")


def run(cfg: Config, ctx) -> list:
    current = ctx.read_prompts(cfg.prompts, cfg.column, "recipe.prompts")
    kept: list[tuple[str, str]] = []
    for round_ in range(cfg.rounds):
        ops = [cfg.operators[(round_ + i) % len(cfg.operators)] for i in range(len(current))]
        users = [
            ctx.render(cfg.prompt, instruction=OPERATORS[o], prompt=p)
            for o, p in zip(ops, current, strict=True)
        ]
        found = ctx.ask_json(users, f"evolve, round {round_ + 1}", SCHEMA)
        nxt, nxt_ops = [], []
        for parent, op, f in zip(current, ops, found, strict=True):
            child = (f or {}).get("prompt", "").strip()
            if not child or child.lower() == parent.strip().lower():
                ctx.stats["evol: eliminated (empty or unchanged)"] += 1
                continue
            nxt.append(child)
            nxt_ops.append(op)
        if cfg.keep_all_rounds or round_ == cfg.rounds - 1:
            kept += [(p, f"{o}, round {round_ + 1}") for p, o in zip(nxt, nxt_ops, strict=True)]
        current = nxt
    kept = kept[: cfg.limit]
    return ctx.answer(
        [p for p, _ in kept], "answer", cfg.answer_prompt, [{"evolved_by": o} for _, o in kept], n=cfg.answers
    )
