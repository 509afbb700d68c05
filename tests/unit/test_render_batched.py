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
