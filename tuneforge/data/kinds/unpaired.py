"""The `unpaired` sample kind: a prompt with one answer labelled good or bad (kto).

Step 4 of a run. Rows are any conversation format (the conversation ends with the answer) plus a
``label`` column holding true (desirable) or false (undesirable); LLaMA-Factory's ``kto_tag``
column is read as the label. The prompt + answer is rendered as in the `preference` kind: the
tokens before the answer become ``prompt_ids``, the trained answer tokens ``completion_ids``; a
prompt that leaves no room for the answer is shortened as there (data.prompt_truncation).
"""

from __future__ import annotations

from types import ModuleType

from tuneforge.data.conversation import UnpairedSample
from tuneforge.data.kinds import KindRow
from tuneforge.data.kinds._answers import split
from tuneforge.data.kinds.preference import render_answers
from tuneforge.data.render import IGNORE_INDEX, RenderOptions
from tuneforge.data.templates import Template
from tuneforge.errors import RowError

BASE_KIND = "conversation"
SAMPLE = UnpairedSample
COLUMNS = {"label": "label"}
REQUIRED = {"label"}
_TEXT_LABELS = {"true": True, "false": False}


def required(fmt_name: str, fmt: ModuleType) -> set[str]:
    return set(fmt.REQUIRED) | REQUIRED


def convert(fmt_name: str, fmt: ModuleType, row: dict, columns: dict, tags: dict) -> UnpairedSample:
    col = columns["label"]
    label = row.get(col)
    if isinstance(label, str) and label.strip().lower() in _TEXT_LABELS:  # CSV cells are text
        label = _TEXT_LABELS[label.strip().lower()]
    if not isinstance(label, bool):
        raise RowError(
            f"bad label: column {col!r} is {label!r}; use true (a good answer) or false (a bad one)"
        )
    conv = fmt.convert(row, columns, tags)
    if conv.messages[-1].role != "assistant":
        raise RowError("bad turn order: the conversation must end with the assistant answer that is labelled")
    prompt, answer = split(conv)
    return UnpairedSample(prompt, answer, label)


def render(sample: UnpairedSample, tokenizer, template: Template, opts: RenderOptions) -> KindRow:
    [(ids, start)], shortened = render_answers(sample.prompt, [sample.completion], tokenizer, template, opts)
    columns = {"prompt_ids": ids[:start], "completion_ids": ids[start:], "label": sample.label}
    return KindRow(columns, tokens=len(ids), trained=len(ids) - start, prompt_shortened=shortened)


def show(tokenizer, row: dict, color: bool) -> str:
    from tuneforge.data.inspect import mark_sample

    prompt, answer = row["prompt_ids"], row["completion_ids"]
    marked = mark_sample(tokenizer, prompt + answer, [IGNORE_INDEX] * len(prompt) + answer, color)
    return f"label: {'good (true)' if row['label'] else 'bad (false)'}\n{marked}"
