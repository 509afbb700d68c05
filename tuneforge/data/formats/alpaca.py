"""Alpaca rows (instruction, input, output) -> Conversation, as LLaMA-Factory reads them.

Step 4 of a run: `tuneforge.data.sources` calls ``convert`` once per row.

Example row::

    {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour",
     "system": "You are a translator.", "history": [["Hi", "Hello! How can I help?"]]}

The user turn is ``instruction`` and ``input`` joined by one newline (either may be empty, as in
LLaMA-Factory); ``output`` is the answer. ``system`` (optional) becomes the system message;
``history`` (optional) is a list of ``[user, assistant]`` pairs placed before the final turn, and
their answers are trained like the last one (set ``data.mask_history`` to train only the last).
``tools`` (optional) holds tool schemas as in the openai format. Numbers are read as text; a null
or NaN ``output`` (or ``instruction`` and ``input``) is a missing value.
"""

from __future__ import annotations

from typing import Any

from tuneforge.data.conversation import Conversation, Message
from tuneforge.data.formats.openai import decode_json, is_missing, parse_tools, required, text_or_none
from tuneforge.errors import RowError

DESCRIPTION = "Alpaca: instruction + input -> output, optional system and history pairs"
KIND = "conversation"
DEFAULT_COLUMNS = {
    "instruction": "instruction",
    "input": "input",
    "output": "output",
    "system": "system",
    "history": "history",
    "tools": "tools",
}
REQUIRED = {"instruction", "output"}


def convert(row: dict, columns: dict[str, str], tags: dict[str, str]) -> Conversation:
    messages: list[Message] = []
    system = text_or_none(row.get(columns["system"]), columns["system"])
    if system:
        messages.append(Message("system", system))
    messages.extend(_history(row.get(columns["history"]), columns["history"]))

    parts = [text_or_none(row.get(columns[f]), columns[f]) for f in ("instruction", "input")]
    prompt = "\n".join(p for p in parts if p)
    if not prompt.strip():
        if all(is_missing(row.get(columns[f])) for f in ("instruction", "input")):
            required(row, columns["instruction"])  # raises: the prompt is missing, not blank
        raise RowError(f"empty prompt: {columns['instruction']!r} and {columns['input']!r} are empty")
    output = text_or_none(required(row, columns["output"]), columns["output"])
    if output is None or not output.strip():
        raise RowError(f"empty answer: {columns['output']!r} is empty")
    messages += [Message("user", prompt), Message("assistant", output)]
    return Conversation(messages, tools=parse_tools(row.get(columns["tools"])))


def _history(value: Any, col: str) -> list[Message]:
    pairs = decode_json(value, col)
    if not pairs:
        return []
    if not isinstance(pairs, list):
        raise RowError(
            f"bad history: {col!r} is a {type(pairs).__name__}, not a list of [user, assistant] pairs"
        )
    out = []
    for k, pair in enumerate(pairs):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise RowError(f"bad history: {col}[{k}] is not a [user, assistant] pair")
        user, answer = (text_or_none(x, f"{col}[{k}]") for x in pair)
        for what, text in (("user turn", user), ("answer", answer)):
            if not text or not text.strip():
                raise RowError(f"bad history: {col}[{k}] has an empty {what}")
        out += [Message("user", user), Message("assistant", answer)]
    return out
