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

``content`` may be a string or a list of parts: ``{"type": "text", "text": ...}`` (joined without a
separator); LLaMA-Factory v1's typed parts ``{"type": "text" | "reasoning" | "tool_call", "value":
...}`` too, where reasoning parts (joined) become `Message.reasoning` and a tool_call part (JSON text
or an object ``{name, arguments}``) a tool call; image, video and audio parts drop the row (not
supported yet). ``reasoning_content`` (or ``reasoning``) becomes `Message.reasoning`; ``weight``
(OpenAI's) or ``loss_weight`` (LLaMA-Factory v1's) 0/1 becomes `Message.train` False/True. Role ``developer`` is read as ``system`` and the legacy
``function`` role as ``tool``. Arrow-backed sources (Parquet, the hub) fill absent keys with null,
so null always means "not given"; so does a float NaN (what pandas writes for an empty cell). A
missing value in a required column drops the row as "missing value in column X" in every format.
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
MISSING = "missing value in column"  # the drop reason's start; the column name follows


def convert(row: dict, columns: dict[str, str], tags: dict[str, str]) -> Conversation:
    col = columns["messages"]
    raw = decode_json(required(row, col), col)
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
    text, reasoning_parts, call_parts = _content(where, m.get("content"))
    msg = Message(role=role, content=text)
    calls = m.get("tool_calls")
    if calls and not isinstance(calls, list):
        calls = [calls]
    calls = [(f"{where}.tool_calls[{k}]", c) for k, c in enumerate(calls or [])] + call_parts
    if calls:
        if role != "assistant":
            raise RowError(
                f"bad message: {where} ({role}) has tool_calls; only assistant messages call tools"
            )
        msg.tool_calls = [parse_tool_call(c, at) for at, c in calls]
    reasoning = m.get("reasoning_content")
    if reasoning is None:
        reasoning = m.get("reasoning")
    if reasoning_parts:
        if role != "assistant":
            raise RowError(
                f"bad message: {where} ({role}) has a 'reasoning' part; only assistant messages reason"
            )
        reasoning = "".join(reasoning_parts)  # joined as the text parts are, and as LLaMA-Factory does
    if reasoning is not None and role == "assistant":
        if not isinstance(reasoning, str):
            raise RowError(f"bad message: {where} has reasoning that is not text")
        msg.reasoning = reasoning
    if role == "tool":
        msg.tool_call_id = text_or_none(m.get("tool_call_id"), f"{where}.tool_call_id")
        msg.name = text_or_none(m.get("name"), f"{where}.name")
    msg.train = _train(where, m)
    return msg


def _train(where: str, m: dict) -> bool | None:
    """``weight`` (OpenAI's) or ``loss_weight`` (LLaMA-Factory v1's): 0 never trains, 1 always does."""
    for key in ("weight", "loss_weight"):
        weight = m.get(key)
        if is_missing(weight):
            continue
        if isinstance(weight, bool) or weight not in (0, 1):
            raise RowError(
                f"bad weight: {where} has {key} {weight!r}; only 0 (not trained) and 1 (trained) are "
                "supported, not weights in between"
            )
        return weight == 1
    return None


# content part types of images, video and audio (OpenAI's and LLaMA-Factory v1's) -> why they are refused
_MEDIA_PARTS = {"image_url": "images need a vision-language model", "image": "images need a vision-language model",
                "video_url": "videos need a vision-language model", "video": "videos need a vision-language model",
                "audio_url": "audio needs an audio-language model", "audio": "audio needs an audio-language model",
                "input_audio": "audio needs an audio-language model", "file": "files need a multimodal model"}  # fmt: skip


def _content(where: str, content: Any) -> tuple[str, list[str], list[tuple[str, Any]]]:
    """(the text, the reasoning parts, (where, call) of the tool-call parts) of a message's content:
    a string, or a list of parts ``{"type": ..., "text" or "value": ...}`` (OpenAI's and
    LLaMA-Factory v1's)."""
    if is_missing(content):
        return "", [], []
    if isinstance(content, str):
        return content, [], []
    if not isinstance(content, list):
        raise RowError(f"bad message: {where} has content of type {type(content).__name__}")
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[tuple[str, Any]] = []
    for k, part in enumerate(content):
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            raise RowError(f"bad message: {where}.content[{k}] is a {type(part).__name__}, not a part object")
        kind = part.get("type", "text")
        value = part["text"] if isinstance(part.get("text"), str) else part.get("value")
        if not isinstance(kind, str):
            raise RowError(f"bad message: {where}.content[{k}] has a type that is not text: {kind!r:.40}")
        if kind in _MEDIA_PARTS:
            article = "an" if kind[:1] in "aeiou" else "a"
            raise RowError(
                f"non-text content: {where} has {article} {kind!r} part; {_MEDIA_PARTS[kind]} (not supported yet)"
            )
        if kind == "tool_call":
            at = f"{where}.content[{k}]"
            calls.append((at, _tool_call_part(at, value)))
        elif kind not in ("text", "reasoning"):
            raise RowError(
                f"bad message: {where}.content[{k}] has type {kind!r}; parts are text, reasoning or tool_call"
            )
        elif not isinstance(value, str):
            raise RowError(f"bad message: {where}.content[{k}] ({kind}) has no 'text' or 'value' string")
        else:
            (texts if kind == "text" else reasoning).append(value)
    return "".join(texts), reasoning, calls


def _tool_call_part(where: str, value: Any) -> Any:
    """A tool_call part's call: JSON text or an object ``{name, arguments}``."""
    if isinstance(value, str):
        return loads(value, f"tool call: {where}")
    if value is None:
        raise RowError(f"bad tool call: {where} has no 'value'")
    return value


# --- helpers shared with the alpaca and sharegpt converters -----------------------------------


def is_missing(value: Any) -> bool:
    """Whether a cell holds no value: null, or the float NaN pandas and JSON's ``NaN`` give."""
    return value is None or (isinstance(value, float) and value != value)


def required(row: dict, column: str) -> Any:
    """The value of a required column; a missing one is a RowError counted as "missing value in column X"."""
    value = row.get(column)
    if is_missing(value):
        raise RowError(f"{MISSING} {column!r}: the cell is empty, null or NaN")
    return value


def loads(text: str, what: str) -> Any:
    """JSON text in a cell as Python data; a RowError "bad WHAT: why" where it cannot be read."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        why = f"not valid JSON ({e.msg}: column {e.colno})"
    except RecursionError:
        why = "JSON nested too deeply to read"
    except ValueError as e:  # a number of more than 4,300 digits
        why = f"not valid JSON ({str(e).split(':')[0]})"
    raise RowError(f"bad {what}: {why}")


def decode_json(value: Any, what: str) -> Any:
    """A structured cell as Python data: CSV cells and some hub datasets hold JSON text."""
    if is_missing(value):
        return None
    if not isinstance(value, str):
        return value
    if not value.strip():
        return None
    return loads(value, what)


def text_or_none(value: Any, what: str) -> str | None:
    """An optional text cell: None, NaN or '' mean absent; numbers are written as text."""
    if is_missing(value) or value == "":
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
        loads(args, f"tool call: {where} arguments")
        return args
    try:
        return json.dumps(args, ensure_ascii=False)
    except (RecursionError, ValueError, TypeError):
        raise RowError(f"bad tool call: {where} arguments cannot be written as JSON") from None


def parse_tool_call(call: Any, where: str) -> ToolCall:
    """A call in OpenAI's shape ({id, type, function: {name, arguments}}) or the flat one
    ({name, arguments}) that sharegpt data uses."""
    if not isinstance(call, dict):
        raise RowError(f"bad tool call: {where} is a {type(call).__name__}, not an object")
    fn = call["function"] if isinstance(call.get("function"), dict) else call
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise RowError(f"bad tool call: {where} has no function name")
    call_id = text_or_none(call.get("id"), "tool call id")
    return ToolCall(name=name, arguments=arguments_text(fn.get("arguments"), where), id=call_id)


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
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str) and fn["name"]:
            out.append({"type": tool.get("type") or "function", "function": fn})
        elif isinstance(tool, dict) and isinstance(tool.get("name"), str) and tool["name"]:
            out.append({"type": "function", "function": tool})
        else:
            raise RowError(f"bad tools: tools[{k}] has no function name")
    return out
