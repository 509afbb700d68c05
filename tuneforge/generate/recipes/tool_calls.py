"""`tool_calls`: requests that need one of the given tools, each with the call that answers it,
written by the teacher and validated against the tools' schema (the function exists, the arguments
match its parameters): a call that does not fit is dropped and counted."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import Field

from tuneforge.generate.recipes._base import RecipeConfig, Sample

DESCRIPTION = "requests and the tool calls that answer them, validated against a tools schema"
PROMPT = (
    "Here is a tool:\n{{ tool | tojson }}\n\n"
    "Write {{ count }} different requests a user might send that this tool answers, each with the exact call. "
    'Answer with a JSON array of {"request": "...", "arguments": {...}} and nothing else.'
)
SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"request": {"type": "string", "minLength": 1}, "arguments": {"type": "object"}},
        "required": ["request", "arguments"],
    },
}


class Config(RecipeConfig):
    name: Literal["tool_calls"] = "tool_calls"
    tools: list[dict] | str = Field(description="OpenAI tool schemas: a list, or a JSON file holding one.")
    per_tool: int = Field(5, ge=1, le=100, description="Requests asked for per tool.")
    prompt: str = Field(PROMPT, description="How requests and calls are asked for (Jinja; `tool`, `count`).")


def load_tools(given: list[dict] | str) -> list[dict]:
    from pathlib import Path

    from tuneforge.errors import ConfigError

    if isinstance(given, str):
        try:
            given = json.loads(Path(given).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(
                f"recipe.tools: {given} is not a readable JSON file of tool schemas ({e})"
            ) from None
    tools = given if isinstance(given, list) else [given]
    for k, t in enumerate(tools):
        if (
            not isinstance(t, dict)
            or not isinstance(t.get("function"), dict)
            or not t["function"].get("name")
        ):
            raise ConfigError(
                f"recipe.tools[{k}]: expected {{type: function, function: {{name, parameters}}}}"
            )
    return tools


def run(cfg: Config, ctx) -> list:
    from tuneforge.generate.context import fits

    tools = load_tools(cfg.tools)
    found = ctx.ask_json(
        [ctx.render(cfg.prompt, tool=t, count=cfg.per_tool) for t in tools], "requests with calls", SCHEMA
    )
    samples = []
    for tool, items in zip(tools, found, strict=True):
        fn = tool["function"]
        for item in (items or [])[: cfg.per_tool]:
            if not fits(item["arguments"], fn.get("parameters") or {"type": "object"}):
                ctx.stats["tool_calls: arguments do not fit the tool's parameters"] += 1
                continue
            call = {
                "id": f"call_{len(samples)}",
                "type": "function",
                "function": {
                    "name": fn["name"],
                    "arguments": json.dumps(item["arguments"], ensure_ascii=False),
                },
            }
            messages = [
                *ctx.conversation(item["request"]),
                {"role": "assistant", "content": None, "tool_calls": [call]},
            ]
            prov = ctx.origin("requests with calls", cfg.prompt, tool=fn["name"])
            samples.append(Sample(messages, tools=tools, provenance=prov))
    return samples[: cfg.limit]
