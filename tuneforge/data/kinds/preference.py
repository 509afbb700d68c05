"""The `preference` sample kind: a prompt with a chosen and a rejected answer (rm, dpo, orpo, simpo).

Step 4 of a run. Rows are any conversation format plus ``chosen`` and ``rejected`` columns (see
`tuneforge.data.kinds._answers`). Rendering follows the brief the renderer keeps: the prompt
conversation + the chosen answer and the prompt + the rejected answer are each rendered by
`tuneforge.data.render.render_conversation` with the same template (only the final answer
trained; earlier assistant turns of the prompt are context). The tokens before the first trained
token must be identical in both renderings: they become ``prompt_ids``; the trained tokens (the
answer up to and including its stop token) become ``chosen_ids`` / ``rejected_ids``. What the
template writes after the stop token (a newline) is never trained and is left out. These are the
pre-tokenized columns TRL's preference trainers read, so they never tokenize again. A prompt that
leaves no room for an answer is shortened once (`tuneforge.data.truncate`, data.prompt_truncation),
for the longer answer, and both answers are rendered after the same shortened prompt.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from types import ModuleType

from tuneforge.data.conversation import Conversation, Message, PreferencePair
from tuneforge.data.formats.openai import is_missing
from tuneforge.data.kinds import KindRow
from tuneforge.data.kinds._answers import slot, split, with_answer
from tuneforge.data.render import IGNORE_INDEX, DropSample, RenderOptions, prompt_measure, render_conversation
from tuneforge.data.templates import Template
from tuneforge.data.truncate import applies, shorten_prompt
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
        if is_missing(value) or (isinstance(value, str) and not value.strip()):
            raise RowError(f"missing {what}: column {columns[what]!r} is empty or absent")
        answers[what] = value
    prompt, chosen = split(with_answer(fmt_name, fmt, row, columns, tags, answers["chosen"]))
    prompt_r, rejected = split(with_answer(fmt_name, fmt, row, columns, tags, answers["rejected"]))
    if prompt_r.messages != prompt.messages:  # only the answer differs between the two rows
        raise RowError(
            "bad answer: the rejected answer changed the prompt (chosen and rejected conversations must "
            "share every message before their last one)"
        )
    return PreferencePair(prompt, chosen, rejected)


def render_answer(
    prompt: Conversation, answer: Message, tokenizer, template: Template, max_length: int
) -> tuple[list[int], int]:
    """(ids up to the answer's last trained token, where the answer starts) for prompt + answer."""
    msgs = [replace(m, train=False) for m in prompt.messages] + [replace(answer, train=True)]
    # never shortened here: the caller shortens the prompt once for all its answers
    opts = RenderOptions(max_length, prompt_truncation="drop")
    r = render_conversation(Conversation(msgs, tools=prompt.tools), tokenizer, template, opts)
    trained = [i for i, lab in enumerate(r.labels) if lab != IGNORE_INDEX]
    start, end = trained[0], trained[-1] + 1
    if len(trained) != end - start:
        raise DropSample(ANSWER_SPLIT)
    return r.input_ids[:end], start


def render_answers(
    prompt: Conversation, answers: list[Message], tokenizer, template: Template, opts: RenderOptions
) -> tuple[list[tuple[list[int], int]], bool]:
    """`render_answer` for each answer after the same prompt, and whether the prompt was shortened
    (once, for the longest answer) to leave room for them."""
    try:
        return [render_answer(prompt, m, tokenizer, template, opts.max_length) for m in answers], False
    except DropSample as e:
        if not applies(e, opts):
            raise
    prompt = _shorten_for_answers(prompt, answers, tokenizer, template, opts)
    return [render_answer(prompt, m, tokenizer, template, opts.max_length) for m in answers], True


def render(sample: PreferencePair, tokenizer, template: Template, opts: RenderOptions) -> KindRow:
    answers = [sample.chosen, sample.rejected]
    both, shortened = render_answers(sample.prompt, answers, tokenizer, template, opts)
    (chosen, a), (rejected, b) = both
    if a != b or chosen[:a] != rejected[:b]:
        raise DropSample(PROMPT_DIFFERS)
    columns = {"prompt_ids": chosen[:a], "chosen_ids": chosen[a:], "rejected_ids": rejected[b:]}
    trained = len(chosen) - a + len(rejected) - b
    return KindRow(columns, tokens=a + trained, trained=trained, prompt_shortened=shortened)


def show(tokenizer, row: dict, color: bool) -> str:
    from tuneforge.data.inspect import mark_sample

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


def _shorten_for_answers(
    prompt: Conversation, answers: list[Message], tokenizer, template: Template, opts: RenderOptions
) -> Conversation:
    """``prompt`` shortened once (data.prompt_truncation), for the longest of ``answers``, so every
    answer follows the same prompt ids."""
    longest = max(_answer_tokens(prompt, a, tokenizer, template) for a in answers)
    return shorten_prompt(prompt, longest, prompt_measure(tokenizer, template), tokenizer, opts)


def _answer_tokens(prompt: Conversation, answer: Message, tokenizer, template: Template) -> int:
    """The trained tokens of ``answer`` after ``prompt``, nothing cut."""
    msgs = [replace(m, train=False) for m in prompt.messages] + [replace(answer, train=True)]
    whole = RenderOptions(sys.maxsize, prompt_truncation="drop")
    r = render_conversation(Conversation(msgs, tools=prompt.tools), tokenizer, template, whole)
    return sum(1 for x in r.labels if x != IGNORE_INDEX)
