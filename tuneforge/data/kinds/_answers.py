"""Preference and KTO rows in the conversation formats: how each format holds the answer, so a
row plus one answer can be converted by the format's own converter (system, history, tools and
tags all read as for SFT).

Step 4 of a run, used by the `preference` kind. LLaMA-Factory's ranking data (``"ranking": true``)
keeps the prompt in the format's usual columns and the two answers in ``chosen`` / ``rejected``:
alpaca rows hold them as text, sharegpt rows as one turn ``{"from": "gpt", "value": ...}``, openai
rows as one message ``{"role": "assistant", "content": ...}``. A list of one message (TRL's
conversational preference shape) and plain text work in every format. In the turn-list formats
(sharegpt, openai) ``chosen`` / ``rejected`` may instead hold whole conversations that share every
message before their last one, the answer, with no prompt in the messages column: TRL's
implicit-prompt shape, and LLaMA-Factory v1's ``chosen_messages`` / ``rejected_messages``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from tuneforge.data.conversation import Conversation, Message
from tuneforge.data.formats.openai import decode_json
from tuneforge.errors import ConfigError, RowError


@dataclass(frozen=True)
class AnswerSlot:
    """Where a format keeps the answer. ``field`` is the format's field the answers stand in for, so
    a preference row need not have it: alpaca's output (replaced by the answer's text), or the
    messages of a turn-list format (the answer is appended to its turns, or the answers are whole
    conversations); None for none. ``append`` gives the row with the answer in place."""

    field: str | None
    append: Callable[[dict, dict, dict, Any], dict]


def _alpaca(row: dict, columns: dict, tags: dict, answer: Any) -> dict:
    return {**row, columns["output"]: _text(answer, ("value", "content"))}


def _turns(row: dict, columns: dict, turns: list) -> dict:
    """The row with the answer's ``turns`` after its prompt turns; with no prompt there, the answer's
    turns are the whole conversation."""
    col = columns["messages"]
    prompt = decode_json(row.get(col), col)
    if prompt and not isinstance(prompt, list):
        raise RowError(f"bad turn: {col!r} is a {type(prompt).__name__}, not a list of turns")
    if prompt and len(turns) > 1:
        raise RowError(
            f"bad answer: a list of {len(turns)} messages after the prompt in {col!r}; give one assistant "
            f"message, or whole conversations without a prompt in {col!r}"
        )
    if not prompt and len(turns) < 2:
        if col not in row:
            raise RowError(
                f"empty prompt: no column {col!r} holds the prompt and the answer is one message; map "
                "columns.messages to the prompt's column, or give whole conversations in chosen/rejected"
            )
        raise RowError(f"empty prompt: {col!r} has no turns before the answer")
    return {**row, col: [*(prompt or []), *turns]}


def _sharegpt(row: dict, columns: dict, tags: dict, answer: Any) -> dict:
    from tuneforge.data.formats.sharegpt import DEFAULT_TAGS

    t = {**DEFAULT_TAGS, **tags}
    conversation = _conversation(answer)
    if conversation is not None:
        return _turns(row, columns, conversation)
    answer = _one(answer)
    if isinstance(answer, dict) and t["role_tag"] in answer:
        return _turns(row, columns, [answer])
    return _turns(
        row, columns, [{t["role_tag"]: t["assistant_tag"], t["content_tag"]: _text(answer, ("value",))}]
    )


def _openai(row: dict, columns: dict, tags: dict, answer: Any) -> dict:
    conversation = _conversation(answer)
    if conversation is not None:
        return _turns(row, columns, conversation)
    answer = _one(answer)
    if isinstance(answer, dict) and "role" in answer:
        return _turns(row, columns, [answer])
    return _turns(row, columns, [{"role": "assistant", "content": _text(answer, ("content",))}])


SLOTS = {
    "alpaca": AnswerSlot("output", _alpaca),
    "sharegpt": AnswerSlot("messages", _sharegpt),
    "openai": AnswerSlot("messages", _openai),
}


def slot(fmt_name: str, fmt: ModuleType) -> AnswerSlot:
    """The format's answer slot: its own ``ANSWER_SLOT`` (third-party formats), else ours."""
    from tuneforge.data.formats import FORMATS

    found = FORMATS.hook(fmt, "ANSWER_SLOT") or SLOTS.get(fmt_name)
    if found is None:
        raise ConfigError(
            f"format {fmt_name} cannot hold preference or KTO data; use alpaca, sharegpt or openai"
        )
    return found


def with_answer(
    fmt_name: str, fmt: ModuleType, row: dict, columns: dict, tags: dict, answer: Any
) -> Conversation:
    """The row's conversation with ``answer`` as its last (assistant) turn, by the format's converter."""
    conv = fmt.convert(slot(fmt_name, fmt).append(row, columns, tags, answer), columns, tags)
    if not conv.messages or conv.messages[-1].role != "assistant":
        raise RowError("bad answer: the answer did not become an assistant turn")
    return conv


def split(conv: Conversation) -> tuple[Conversation, Message]:
    """(the prompt, the last answer) of a conversation."""
    return Conversation(conv.messages[:-1], tools=conv.tools), conv.messages[-1]


def _decoded(answer: Any) -> Any:
    """JSON text of a message or of a list of them (CSV cells) decoded; other text as it is."""
    if isinstance(answer, str) and answer.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(answer)
        except RecursionError:
            raise RowError("bad answer: JSON nested too deeply to read") from None
        except ValueError:
            return answer  # plain text that happens to start with a bracket
    return answer


def _conversation(answer: Any) -> list | None:
    """The answer's turns where it is a whole conversation (a list of two or more), else None."""
    answer = _decoded(answer)
    return answer if isinstance(answer, list) and len(answer) > 1 else None


def _one(answer: Any) -> Any:
    """One message: a list of one is unwrapped; JSON text of a message (CSV cells) is decoded."""
    answer = _decoded(answer)
    if isinstance(answer, list):
        if len(answer) != 1:
            raise RowError(f"bad answer: a list of {len(answer)} messages; give one assistant message")
        return answer[0]
    return answer


def _text(answer: Any, keys: tuple[str, ...]) -> str:
    if isinstance(answer, str):
        return answer
    answer = _one(answer)
    if isinstance(answer, dict):
        for k in (*keys, "value", "content"):
            if isinstance(answer.get(k), str):
                return answer[k]
        raise RowError(f"bad answer: {answer!r} has no text ({' or '.join(keys)})")
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        return str(answer)
    if not isinstance(answer, str):
        raise RowError(f"bad answer: expected text, got a {type(answer).__name__}")
    return answer
