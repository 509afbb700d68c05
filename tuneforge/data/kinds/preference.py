"""The `preference` sample kind: a prompt with a chosen and a rejected answer (rm, dpo, orpo, simpo).

Step 4 of a run. Rows are any conversation format plus ``chosen`` and ``rejected`` columns (see
`tuneforge.data.kinds._answers`). Rendering follows the brief the renderer keeps: the prompt
conversation + the chosen answer and the prompt + the rejected answer are each rendered by
`tuneforge.data.render.render_conversation` with the same template (only the final answer
trained; earlier assistant turns of the prompt are context). The tokens before the first trained
token must be identical in both renderings: they become ``prompt_ids``; the trained tokens (the
answer up to and including its stop token) become ``chosen_ids`` / ``rejected_ids``. What the
template writes after the stop token (a newline) is never trained and is left out. These are the
pre-tokenized columns TRL's preference trainers read, so they never tokenize again.
"""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType

from tuneforge.data.conversation import Conversation, Message, PreferencePair
from tuneforge.data.kinds import KindRow
from tuneforge.data.kinds._answers import slot, split, with_answer
from tuneforge.data.render import IGNORE_INDEX, DropSample, RenderOptions, render_conversation
from tuneforge.data.templates import Template
from tuneforge.errors import RowError

BASE_KIND = "conversation"
SAMPLE = PreferencePair
COLUMNS = {"chosen": "chosen", "rejected": "rejected"}
REQUIRED = {"chosen", "rejected"}
PROMPT_DIFFERS = "prompt tokenizes differently before the chosen and the rejected answer"
ANSWER_SPLIT = "answer is not one trained span"


def required(fmt_name: str, fmt: ModuleType) -> set[str]:
    answer_field = slot(fmt_name, fmt).field
    return (set(fmt.REQUIRED) - {answer_field}) | REQUIRED


def convert(fmt_name: str, fmt: ModuleType, row: dict, columns: dict, tags: dict) -> PreferencePair:
    answers = {}
    for what in ("chosen", "rejected"):
        value = row.get(columns[what])
        if value is None or (isinstance(value, str) and not value.strip()):
            raise RowError(f"missing {what}: column {columns[what]!r} is empty or absent")
        answers[what] = value
    prompt, chosen = split(with_answer(fmt_name, fmt, row, columns, tags, answers["chosen"]))
    prompt_r, rejected = split(with_answer(fmt_name, fmt, row, columns, tags, answers["rejected"]))
    if prompt_r.messages != prompt.messages:  # only the answer differs between the two rows
        raise RowError("bad answer: the rejected answer changed the prompt")
    return PreferencePair(prompt, chosen, rejected)


def render_answer(
    prompt: Conversation, answer: Message, tokenizer, template: Template, max_length: int
) -> tuple[list[int], int]:
    """(ids up to the answer's last trained token, where the answer starts) for prompt + answer."""
    msgs = [replace(m, train=False) for m in prompt.messages] + [replace(answer, train=True)]
    r = render_conversation(
        Conversation(msgs, tools=prompt.tools), tokenizer, template, RenderOptions(max_length)
    )
    trained = [i for i, lab in enumerate(r.labels) if lab != IGNORE_INDEX]
    start, end = trained[0], trained[-1] + 1
    if len(trained) != end - start:
        raise DropSample(ANSWER_SPLIT)
    return r.input_ids[:end], start


def render(sample: PreferencePair, tokenizer, template: Template, opts: RenderOptions) -> KindRow:
    chosen, a = render_answer(sample.prompt, sample.chosen, tokenizer, template, opts.max_length)
    rejected, b = render_answer(sample.prompt, sample.rejected, tokenizer, template, opts.max_length)
    if a != b or chosen[:a] != rejected[:b]:
        raise DropSample(PROMPT_DIFFERS)
    columns = {"prompt_ids": chosen[:a], "chosen_ids": chosen[a:], "rejected_ids": rejected[b:]}
    trained = len(chosen) - a + len(rejected) - b
    return KindRow(columns, tokens=a + trained, trained=trained)


def show(tokenizer, row: dict, color: bool) -> str:
    from tuneforge.inspect_data import mark_sample

    prompt = row["prompt_ids"]
    masked = [IGNORE_INDEX] * len(prompt)
    return "\n".join(
        [
            "chosen:",
            mark_sample(tokenizer, prompt + row["chosen_ids"], masked + row["chosen_ids"], color),
            "rejected:",
            mark_sample(tokenizer, prompt + row["rejected_ids"], masked + row["rejected_ids"], color),
        ]
    )
