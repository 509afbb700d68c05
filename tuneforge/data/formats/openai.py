"""Rows in OpenAI's chat fine-tuning shape -> Conversation.

Step 4 of a run: `tuneforge.data.sources` calls ``convert`` once per row. This module is also the
home of the OpenAI-shape helpers (tool schemas, tool calls, JSON-in-a-cell) that the alpaca and
sharegpt converters share, since OpenAI's shapes are what `Conversation` stores.

Example row::

    {"messages": [{"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
                   "type": "function", "function": {"name": "get_weather",
                                                    "arguments": "{\\"city\\": \\"Paris\\"}"}}]},
                  {"role": "tool", "tool_call_id": "call_1", "content": "18 C, cloudy"},
                  {"role": "assistant", "content": "18 C and cloudy.", "reasoning_content": "...",
                   "weight": 1}],
     "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {...}}}]}

``content`` may be a string or a list of ``{"type": "text", "text": ...}`` parts (joined without a
separator); ``reasoning_content`` (or ``reasoning``) becomes `Message.reasoning`; ``weight`` 0/1
becomes `Message.train` False/True. Role ``developer`` is read as ``system`` and the legacy
``function`` role as ``tool``. Arrow-backed sources (Parquet, the hub) fill absent keys with null,
so null always means "not given".
"""

from __future__ import annotations

import json
from typing import Any

from tuneforge.data.conversation import Conversation, Message, ToolCall
from tuneforge.errors import RowError

DESCRIPTION = "OpenAI chat messages (role/content), tool_calls, reasoning_content, weight"
KIND = "conversation"
DEFAULT_COLUMNS = {"messages": "messages", "system": "system", "tools": "tools"}
REQUIRED = {"messages"}

_ROLE_ALIASES = {"developer": "system", "function": "tool"}


def convert(row: dict, columns: dict[str, str], tags: dict[str, str]) -> Conversation:
    col = columns["messages"]
    raw = decode_json(row.get(col), col)
    if not raw:
        raise RowError(f"no messages: {col!r} is empty")
    if not isinstance(raw, list):
        raise RowError(f"bad messages: {col!r} is a {type(raw).__name__}, not a list of messages")
    messages = [_message(f"{col}[{i}]", m) for i, m in enumerate(raw)]
    system = text_or_none(row.get(columns["system"]), columns["system"])
    if system and messages[0].role != "system":
        messages.insert(0, Message("system", system))
    return Conversation(messages, tools=parse_tools(row.get(columns["tools"])))


def _message(where: str, m: Any) -> Message:
    if not isinstance(m, dict):
        raise RowError(f"bad message: {where} is a {type(m).__name__}, not an object with role and content")
    role = m.get("role")
    if not isinstance(role, str):
        raise RowError(f"bad message: {where} has no 'role'")
    role = _ROLE_ALIASES.get(role, role)
    msg = Message(role=role, content=_content(where, m.get("content")))
    calls = m.get("tool_calls")
    if calls:
        if role != "assistant":
            raise RowError(
                f"bad message: {where} ({role}) has tool_calls; only assistant messages call tools"
            )
        if not isinstance(calls, list):
            calls = [calls]
        msg.tool_calls = [parse_tool_call(c, f"{where}.tool_calls[{k}]") for k, c in enumerate(calls)]
    reasoning = m.get("reasoning_content")
    if reasoning is None:
        reasoning = m.get("reasoning")
    if reasoning is not None and role == "assistant":
        if not isinstance(reasoning, str):
            raise RowError(f"bad message: {where} has reasoning that is not text")
        msg.reasoning = reasoning
    if role == "tool":
        msg.tool_call_id = text_or_none(m.get("tool_call_id"), f"{where}.tool_call_id")
        msg.name = text_or_none(m.get("name"), f"{where}.name")
    weight = m.get("weight")
    if weight is not None:
        if isinstance(weight, bool) or weight not in (0, 1):
            raise RowError(f"bad weight: {where} has weight {weight!r}; use 0 (not trained) or 1 (trained)")
        msg.train = weight == 1
    return msg


def _content(where: str, content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise RowError(f"bad message: {where} has content of type {type(content).__name__}")
    texts = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif (
            isinstance(part, dict)
            and part.get("type", "text") == "text"
            and isinstance(part.get("text"), str)
        ):
            texts.append(part["text"])
        else:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise RowError(f"non-text content: {where} has a {kind!r} part; only text parts are supported")
    return "".join(texts)


# --- helpers shared with the alpaca and sharegpt converters -----------------------------------


def decode_json(value: Any, what: str) -> Any:
    """A structured cell as Python data: CSV cells and some hub datasets hold JSON text."""
    if not isinstance(value, str):
        return value
    if not value.strip():
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as e:
        raise RowError(f"bad {what}: not valid JSON ({e.msg}: column {e.colno})") from None


def text_or_none(value: Any, what: str) -> str | None:
    """An optional text cell: None or '' mean absent; numbers are written as text."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise RowError(f"bad {what}: expected text, got a {type(value).__name__}")


def arguments_text(args: Any, where: str) -> str:
    """Tool-call arguments as JSON text, as OpenAI's API carries them."""
    if args is None:
        return "{}"
    if isinstance(args, str):
        try:
            json.loads(args)
        except json.JSONDecodeError as e:
            raise RowError(f"bad tool call: {where} arguments are not valid JSON ({e.msg})") from None
        return args
    return json.dumps(args, ensure_ascii=False)


def parse_tool_call(call: Any, where: str) -> ToolCall:
    """A call in OpenAI's shape ({id, type, function: {name, arguments}}) or the flat one
    ({name, arguments}) that sharegpt data uses."""
    if not isinstance(call, dict):
        raise RowError(f"bad tool call: {where} is a {type(call).__name__}, not an object")
    fn = call["function"] if isinstance(call.get("function"), dict) else call
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise RowError(f"bad tool call: {where} has no function name")
    call_id = call.get("id")
    return ToolCall(name=name, arguments=arguments_text(fn.get("arguments"), where), id=call_id or None)


def parse_tools(value: Any) -> list[dict] | None:
    """Tool schemas (a list, one object, or their JSON text) in OpenAI's shape
    ``{"type": "function", "function": {name, description, parameters}}``; bare
    ``{name, description, parameters}`` objects are wrapped."""
    tools = decode_json(value, "tools")
    if not tools:
        return None
    if isinstance(tools, dict):
        tools = [tools]
    if not isinstance(tools, list):
        raise RowError(f"bad tools: expected a list of tool schemas, got a {type(tools).__name__}")
    out = []
    for k, tool in enumerate(tools):
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict) and tool["function"].get("name"):
            out.append({"type": tool.get("type") or "function", "function": tool["function"]})
        elif isinstance(tool, dict) and isinstance(tool.get("name"), str) and tool["name"]:
            out.append({"type": "function", "function": tool})
        else:
            raise RowError(f"bad tools: tools[{k}] has no function name")
    return out
