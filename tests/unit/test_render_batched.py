"""The batched renderer (one tokenizer call for many conversations, used by the pipeline) gives
exactly what rendering each conversation on its own gives: ids, labels, truncation and drops."""

from __future__ import annotations

import pytest

from tuneforge.data.conversation import Conversation, Message
from tuneforge.data.render import DropSample, RenderOptions, render_conversation, render_conversations
from tuneforge.data.templates import resolve_template


def _convs() -> list[Conversation]:
    m = Message
    return [
        Conversation(
            messages=[m(role="user", content="Hi there"), m(role="assistant", content="Hello! " * 5)]
        ),
        Conversation(
            messages=[
                m(role="system", content="Be brief."),
                m(role="user", content="2+2?"),
                m(role="assistant", content="4"),
                m(role="user", content="and 3+3, with some words 日本語 ünïcode?"),
                m(role="assistant", content="6, " + "more text " * 30),
            ]
        ),
        Conversation(messages=[m(role="user", content="only a question")]),  # dropped: nothing to train
        Conversation(messages=[m(role="user", content="long " * 80), m(role="assistant", content="x " * 50)]),
    ]


@pytest.mark.parametrize("template_name", ["auto", "chatml"])
@pytest.mark.parametrize(
    "opts", [RenderOptions(max_length=512), RenderOptions(max_length=40, mask_history=True)]
)
def test_batched_equals_one_by_one(tokenizer, template_name, opts):
    template = resolve_template(template_name, tokenizer)
    batched = render_conversations(_convs(), tokenizer, template, opts)
    assert len(batched) == len(_convs())
    for conv, got in zip(_convs(), batched, strict=True):
        try:
            want = render_conversation(conv, tokenizer, template, opts)
        except DropSample as e:
            assert isinstance(got, DropSample) and got.reason == e.reason
            continue
        assert got.input_ids == want.input_ids and got.labels == want.labels
    assert any(isinstance(r, DropSample) for r in batched)


TEXTS = [
    "Hi  there 日本語 😀 x\n\n  y",
    "<|im_start|>user\nwhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n",
    "   leading spaces,\ttabs\t\tand trailing   ",
    "emoji run 😀😀👍🏽 combining é and ﬁ ligature\n",
]


@pytest.mark.parametrize("shift", [0, 1])
@pytest.mark.parametrize("text", TEXTS)
def test_boundary_lookups_equal_bisect_over_all_offsets(tokenizer, text, shift):
    """`tuneforge.data.tokens.Tokens` finds a character's token from the Rust encoding without building every offset; at
    every position it must answer what bisect over the full offsets answers (shift 1: a bos in front)."""
    from bisect import bisect_left, bisect_right

    from tuneforge.data.tokens import Tokens

    enc = tokenizer.backend_tokenizer.encode(text, add_special_tokens=False)
    tokens = Tokens([0] * shift + enc.ids, enc, shift)
    offsets = [(0, 0)] * shift + enc.offsets
    starts = [s for s, _ in offsets]
    ends = [e if e > s else s + 1 for s, e in offsets]
    if not text.isascii():  # byte tokens of one character share its offsets: the walk must meet them
        assert any(b[0] == a[0] for a, b in zip(offsets, offsets[1:], strict=False))
    for pos in range(len(text) + 1):
        assert tokens.first_ending_after(pos) == bisect_right(ends, pos), pos
        assert tokens.first_starting_at(pos) == bisect_left(starts, pos), pos
