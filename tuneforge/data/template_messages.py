"""What a chat template is given and what it must keep (step 4 of a run, for `tuneforge.data.render`):
our messages as the dicts Hugging Face chat templates read, and the check that a template did not
silently drop the tool calls, reasoning or tool schemas it was given.
"""

from __future__ import annotations

import json

from tuneforge.data.conversation import Message, ToolCall
from tuneforge.data.templates import Template, working_templates
from tuneforge.errors import ConfigError

THINK = "<think>\n{reasoning}\n</think>\n\n{content}"


def template_messages(messages: list[Message], template: Template | None = None) -> list[dict]:
    """Messages as the dicts Hugging Face chat templates read (OpenAI shape, tool-call arguments as
    objects, reasoning as ``reasoning_content``); keys without a value are left out. For a template
    that has no place for reasoning, the reasoning goes into the content inside <think> tags (the
    DeepSeek-R1 / Qwen3 convention), so it is trained rather than lost."""
    fold = template is not None and "reasoning_content" not in template.jinja
    out = []
    for m in messages:
        content = m.content
        if fold and m.reasoning:
            content = THINK.format(reasoning=m.reasoning.strip(), content=m.content)
        d: dict = {"role": m.role, "content": content}
        if m.tool_calls:
            d["tool_calls"] = [_tool_call(tc) for tc in m.tool_calls]
        if m.reasoning is not None and not fold:
            d["reasoning_content"] = m.reasoning
        if m.tool_call_id is not None:
            d["tool_call_id"] = m.tool_call_id
        if m.name is not None:
            d["name"] = m.name
        out.append(d)
    return out


def _tool_call(tc: ToolCall) -> dict:
    try:  # templates expect an object (Qwen's does `arguments | tojson`); keep bad JSON as text
        arguments = json.loads(tc.arguments)
    except ValueError:
        arguments = tc.arguments
    call: dict = {"type": "function", "function": {"name": tc.name, "arguments": arguments}}
    if tc.id is not None:
        call["id"] = tc.id
    return call


def check_nothing_lost(template: Template, msgs: list[Message], tools, turns) -> None:
    """A template that silently drops tool calls, reasoning or tool schemas would train the model on
    answers without them; stop instead, naming only templates that would keep them."""
    with_tools = bool(tools) or any(m.tool_calls for m in msgs)
    for i, m in enumerate(msgs):
        if not m.tool_calls and not m.reasoning:
            continue
        turn = turns.text[turns.boundary(i - 1) or 0 : turns.end(i)]  # boundary(-1) is 0
        for tc in m.tool_calls:
            if tc.name not in turn:
                raise ConfigError(
                    f"chat template {template.name!r} does not render tool calls (message {i} calls "
                    f"{tc.name!r}); {_lost_hint(template, turns.tokenizer, 'them', with_tools)}"
                )
        if m.reasoning and m.reasoning.strip() not in turn:
            raise ConfigError(
                f"chat template {template.name!r} does not render the assistant's reasoning (message {i}); "
                f"{_lost_hint(template, turns.tokenizer, 'it', with_tools)}, or leave the reasoning out of the data"
            )
    for tool in tools or []:
        name = (tool.get("function") or tool).get("name")
        if name and name not in turns.text:
            raise ConfigError(
                f"chat template {template.name!r} does not render tool schemas (tool {name!r} is missing); "
                f"{_lost_hint(template, turns.tokenizer, 'them', with_tools)}"
            )


def _lost_hint(template: Template, tokenizer, them: str, tools: bool) -> str:
    """The choices of data.template that keep what ``template`` lost, for this tokenizer."""
    names = working_templates(tokenizer, template.name, tools=tools)
    if not names:
        return (
            f"no named template renders {them} with this tokenizer's tokens; write a template for this "
            "model (docs/templates.md, 'Adding a template')"
        )
    shown = [f"data.template={n}" + (" (the tokenizer's own)" if n == "auto" else "") for n in names]
    return f"use a template that renders {them}: {' or '.join(shown)}"
