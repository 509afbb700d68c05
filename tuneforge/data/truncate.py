"""Step 4 of a run, called by `tuneforge.data.render` and the preference kind: shorten a prompt that
leaves no room for its answer within ``max_length`` (``data.prompt_truncation``).

A sample whose first trained token lies at or past ``max_length`` would be dropped. Instead, its
prompt (the messages before the first trained one) is shortened until, rendered with the assistant
header (the generation prompt), it takes at most ``max_length - min(answer, max_length // 2)``
tokens: the answer gets all its tokens or at least half the window (the renderer's truncation then
cuts a longer answer at ``max_length``).

* ``keep_end``: drop the oldest turns, each from the first non-system message up to the next user
  message (a system message is kept); if the prompt is still too long, drop the first tokens of
  the first user message left, so the end of the prompt is kept.
* ``drop_turns``: only drop the oldest turns; a sample still too long is dropped.
* ``drop``: the sample is dropped (nothing here is called).

Each step is measured by the caller's ``measure`` (the renderer's own `render_prompt` with the run's
template and tokenizer, so the count is what training sees). A shortened prompt changes nothing else: the masking
contract holds as for any sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from tuneforge.data.conversation import Conversation, Message
from tuneforge.data.rendered import NO_TRAINED_TOKEN, DropSample, RenderOptions

# the tokens of a prompt (messages, tool schemas) rendered with the assistant header
Measure = Callable[[list[Message], list[dict] | None], int]


def applies(dropped: DropSample, opts: RenderOptions) -> bool:
    """Whether ``dropped`` is a sample whose prompt left no room and the policy shortens prompts."""
    return dropped.reason == NO_TRAINED_TOKEN and opts.prompt_truncation != "drop"


def prompt_budget(max_length: int, answer_tokens: int) -> int:
    """The most tokens the prompt may take: the answer gets all its tokens or half the window."""
    return max_length - min(answer_tokens, max_length // 2)


def shorten_prompt(
    prompt: Conversation, answer_tokens: int, measure: Measure, tokenizer, opts: RenderOptions
) -> Conversation:
    """``prompt`` shortened by ``opts.prompt_truncation`` to leave room for an answer of
    ``answer_tokens`` tokens; raises DropSample where the policy cannot."""
    budget = prompt_budget(opts.max_length, answer_tokens)
    msgs = prompt.messages
    n = measure(msgs, prompt.tools)
    while n > budget and (fewer := _without_oldest_turn(msgs)) is not None:
        msgs = fewer
        n = measure(msgs, prompt.tools)
    if n > budget and opts.prompt_truncation == "keep_end":
        msgs = _cut_start(msgs, n, budget, prompt.tools, measure, tokenizer, opts)
    elif n > budget:
        raise _too_long(n, opts)
    return Conversation(msgs, tools=prompt.tools, origin=prompt.origin)


def _without_oldest_turn(msgs: list[Message]) -> list[Message] | None:
    """The messages less those from the first non-system one up to the next user message; None
    when no user message would be left after them."""
    first = 1 if msgs and msgs[0].role == "system" else 0
    following = next((j for j in range(first + 1, len(msgs)) if msgs[j].role == "user"), None)
    return None if following is None else [*msgs[:first], *msgs[following:]]


def _cut_start(
    msgs: list[Message], n: int, budget: int, tools, measure: Measure, tokenizer, opts: RenderOptions
) -> list[Message]:
    """The first user message less its first k tokens, k growing until the prompt fits (tokens at
    the cut may merge differently once re-rendered, so each try is measured)."""
    i = next((j for j, m in enumerate(msgs) if m.role == "user"), None)
    if i is None:
        raise _too_long(n, opts)
    ids = tokenizer(msgs[i].content, add_special_tokens=False)["input_ids"]
    k = 0
    while n > budget:
        k += n - budget
        # a cut inside a character decodes to U+FFFD: that piece is cut too
        text = tokenizer.decode(ids[k:]).lstrip("\ufffd").lstrip() if k < len(ids) else ""
        if not text:  # the rest of the prompt (a system message, tool results) is too long alone
            raise _too_long(n, opts)
        msgs = [*msgs[:i], replace(msgs[i], content=text), *msgs[i + 1 :]]
        n = measure(msgs, tools)
    return msgs


def _too_long(n: int, opts: RenderOptions) -> DropSample:
    return DropSample(
        NO_TRAINED_TOKEN,
        f"prompt {n} tokens after data.prompt_truncation={opts.prompt_truncation}; max_length {opts.max_length}",
    )
