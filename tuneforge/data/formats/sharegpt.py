"""ShareGPT rows (a list of {from, value} turns) -> Conversation, as LLaMA-Factory reads them.

Step 4 of a run: `tuneforge.data.sources` calls ``convert`` once per row.

Example row::

    {"conversations": [{"from": "human", "value": "Weather in Paris?"},
                       {"from": "function_call", "value": "{\\"name\\": \\"get_weather\\",
                                                             \\"arguments\\": {\\"city\\": \\"Paris\\"}}"},
                       {"from": "observation", "value": "18 C, cloudy"},
                       {"from": "gpt", "value": "18 C and cloudy."}],
     "system": "You are a weather bot.", "tools": "[{\\"name\\": \\"get_weather\\", ...}]"}

Tags (``data.datasets[i].tags``) name the keys and role values: role_tag (from), content_tag
(value), user_tag (human), assistant_tag (gpt), system_tag (system), function_tag
(function_call), observation_tag (observation). While user_tag, assistant_tag or
observation_tag keep their default, the OpenAI names ``user``, ``assistant`` and ``tool`` are
accepted for them too.

Turn order follows LLaMA-Factory: an optional system turn first (it wins over the ``system``
column), then user/observation turns at odd positions (1st, 3rd, ...) and assistant/function_call
turns at even ones, ending on an assistant or function_call turn. A function_call turn's value is
JSON ``{"name", "arguments"}`` or a list of them and becomes an assistant message with
``tool_calls``; an observation turn becomes a ``tool`` message.
"""

from __future__ import annotations

import json
from typing import Any

from tuneforge.data.conversation import Conversation, Message
from tuneforge.data.formats.openai import decode_json, parse_tool_call, parse_tools, required, text_or_none
from tuneforge.errors import RowError

DESCRIPTION = "ShareGPT turns ({from, value}) with function_call/observation; tags configurable"
KIND = "conversation"
DEFAULT_COLUMNS = {"messages": "conversations", "system": "system", "tools": "tools"}
REQUIRED = {"messages"}
DEFAULT_TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "system_tag": "system",
    "function_tag": "function_call",
    "observation_tag": "observation",
}
_KINDS = {"user_tag": "user", "assistant_tag": "assistant", "system_tag": "system",
          "function_tag": "function", "observation_tag": "observation"}  # fmt: skip
_OPENAI_NAMES = {"user_tag": "user", "assistant_tag": "assistant", "observation_tag": "tool"}
_ODD, _EVEN = ("user", "observation"), ("assistant", "function")


def convert(row: dict, columns: dict[str, str], tags: dict[str, str]) -> Conversation:
    tags = {**DEFAULT_TAGS, **tags}
    col = columns["messages"]
    raw = decode_json(required(row, col), col)
    if not raw:
        raise RowError(f"no messages: {col!r} is empty")
    if not isinstance(raw, list):
        raise RowError(f"bad turn: {col!r} is a {type(raw).__name__}, not a list of turns")
    kinds = _kind_of_tag(tags)
    turns = [_turn(f"{col}[{i}]", t, tags, kinds) for i, t in enumerate(raw)]

    messages: list[Message] = []
    if turns[0][0] == "system":
        messages.append(Message("system", _text(f"{col}[0]", turns[0][2])))
        start = 1
    else:
        start = 0
        system = text_or_none(row.get(columns["system"]), columns["system"])
        if system:
            messages.append(Message("system", system))
    body = turns[start:]
    _check_order(col, body, start)
    for where, (kind, _, value) in enumerate(body, start):
        messages.append(_message(f"{col}[{where}]", kind, value, messages))
    return Conversation(messages, tools=parse_tools(row.get(columns["tools"])))


def _kind_of_tag(tags: dict[str, str]) -> dict[str, str]:
    kinds = {tags[key]: kind for key, kind in _KINDS.items() if tags.get(key)}
    for key, name in _OPENAI_NAMES.items():
        if tags[key] == DEFAULT_TAGS[key]:
            kinds.setdefault(name, _KINDS[key])
    return kinds


def _turn(where: str, turn: Any, tags: dict[str, str], kinds: dict[str, str]) -> tuple[str, str, Any]:
    """(kind, the role tag as written, the value) of one turn."""
    role_tag, content_tag = tags["role_tag"], tags["content_tag"]
    if not isinstance(turn, dict):
        raise RowError(f"bad turn: {where} is a {type(turn).__name__}, not an object")
    if role_tag not in turn or content_tag not in turn:
        missing = role_tag if role_tag not in turn else content_tag
        which = "role_tag" if missing == role_tag else "content_tag"
        raise RowError(
            f"bad turn: {where} has no {missing!r} key (it has {', '.join(map(repr, turn))}); "
            f"set tags.{which} to the key your data uses"
        )
    tag = turn[role_tag]
    if not isinstance(tag, str) or tag not in kinds:
        known = ", ".join(repr(t) for t in kinds)
        raise RowError(
            f"unknown role: {where} has {role_tag}={tag!r}; known: {known} (set tags.user_tag etc.)"
        )
    return kinds[tag], tag, turn[content_tag]


def _check_order(col: str, body: list[tuple[str, str, Any]], start: int) -> None:
    for pos, (kind, tag, _) in enumerate(body):
        expected = _ODD if pos % 2 == 0 else _EVEN
        if kind not in expected:
            want = "a user or observation" if expected is _ODD else "an assistant or function_call"
            raise RowError(
                f"bad turn order: {col}[{start + pos}] is {tag!r} where {want} turn belongs "
                "(user/observation and assistant/function_call turns alternate, user first)"
            )
    if len(body) % 2:
        kind, tag, _ = body[-1]
        raise RowError(
            f"bad turn order: the last turn, {col}[{start + len(body) - 1}] ({tag!r}), has no answer"
        )


def _message(where: str, kind: str, value: Any, before: list[Message]) -> Message:
    if kind == "function":
        calls = decode_json(value, "tool call")
        calls = calls if isinstance(calls, list) else [calls]
        if not calls or calls == [None]:
            raise RowError(f"bad tool call: {where} is empty")
        return Message("assistant", "", tool_calls=[parse_tool_call(c, where) for c in calls])
    if kind == "observation":
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False)
        previous = before[-1].tool_calls if before else []
        name = previous[0].name if len(previous) == 1 else None
        return Message("tool", _text(where, value), name=name)
    return Message(kind, _text(where, value))


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise RowError(f"bad turn: {where} has a {type(value).__name__} value, not text")
    return value
