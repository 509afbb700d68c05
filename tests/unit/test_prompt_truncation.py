"""Truncation at the end of a turn and data.prompt_truncation, on the real SmolLM2 tokenizer.

A masked newline after the last trained stop token never decides what is cut (issue 24, item 1);
a prompt that leaves no room for its answer is shortened, keeping the system message, the end of
the prompt and the assistant header, for SFT, preference pairs and KTO samples (item 3).
"""

from __future__ import annotations

import copy

import pytest

from tests.helpers.labels import expect
from tests.helpers.runs import make_config, write_alpaca
from tuneforge.config.load import load_config
from tuneforge.data.conversation import Conversation, Message, PreferencePair, ToolCall, UnpairedSample
from tuneforge.data.kinds import get_kind
from tuneforge.data.kinds.preference import _shorten_for_answers as shorten_for_answers
from tuneforge.data.render import (
    IGNORE_INDEX,
    NO_TRAINED_TOKEN,
    DropSample,
    RenderOptions,
    prompt_measure,
    render_conversation,
)
from tuneforge.data.templates import resolve_template
from tuneforge.data.truncate import prompt_budget, shorten_prompt

SMOL_SYSTEM = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
)
HEADER = "<|im_start|>assistant\n"


def render(conv, tok, template, opts):
    r = render_conversation(conv, tok, template, opts)
    return r.input_ids, r.labels


def trained_text(tok, ids, labels) -> str:
    return tok.decode([i for i, lab in zip(ids, labels, strict=True) if lab != IGNORE_INDEX])


@pytest.fixture(scope="module")
def own(tokenizer):
    return resolve_template("auto", tokenizer)


def three_turns() -> Conversation:
    return Conversation(
        [
            Message("user", "Hi"),
            Message("assistant", "Hello! How can I help?"),
            Message("user", "What is 2+2?"),
            Message("assistant", "4"),
            Message("user", "And 3+3?"),
            Message("assistant", "6"),
        ]
    )


TWO_TURNS = [
    (SMOL_SYSTEM + "<|im_start|>user\nHi<|im_end|>\n" + HEADER, False),
    ("Hello! How can I help?<|im_end|>", True),
    ("\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n" + HEADER, False),
    ("4<|im_end|>", True),
]


# --- item 1: the masked newline after a stop token does not decide the cut ------------------------


def test_stop_token_at_the_last_position_keeps_the_turn(tokenizer, own):
    """The second answer's stop token is the last token that fits; the newline after it does not:
    the turn is kept up to its stop token (it used to be cut back to the first turn)."""
    ids, labels = expect(tokenizer, *TWO_TURNS)
    got = render(three_turns(), tokenizer, own, RenderOptions(len(ids)))
    assert got == (ids, labels)
    assert tokenizer.decode(got[0]).endswith("4<|im_end|>") and got[1][-1] == got[0][-1]


def test_a_turn_whose_boundary_fits_is_kept_whole_as_before(tokenizer, own):
    ids, labels = expect(tokenizer, *TWO_TURNS, ("\n", False))
    assert render(three_turns(), tokenizer, own, RenderOptions(len(ids))) == (ids, labels)
    # one token short of the second stop token: back to the first whole turn
    first = expect(tokenizer, *TWO_TURNS[:2], ("\n", False))
    assert render(three_turns(), tokenizer, own, RenderOptions(len(ids) - 2)) == first


def test_one_token_over_only_by_the_trailing_newline_is_kept_whole_less_it(tokenizer, own):
    full = render(three_turns(), tokenizer, own, RenderOptions(4096))
    ids, labels = render(three_turns(), tokenizer, own, RenderOptions(len(full[0]) - 1))
    assert (ids, labels) == (full[0][:-1], full[1][:-1])
    assert tokenizer.decode(ids).endswith("6<|im_end|>") and labels[-1] == ids[-1]


def test_tool_call_row_keeps_its_last_answer(tokenizer):
    """LLaMA-Factory's glaive rows through the qwen template: a tool call, its result, the answer."""
    tok = copy.deepcopy(tokenizer)
    tok.add_tokens(["<tool_call>", "</tool_call>"])
    qwen = resolve_template("qwen", tok)
    conv = Conversation(
        [
            Message("user", "Weather in Rome?"),
            Message("assistant", "", tool_calls=[ToolCall("get_weather", '{"city": "Rome"}')]),
            Message("tool", '{"temp": 25}', name="get_weather"),
            Message("assistant", "25 degrees."),
        ],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    )
    full = render(conv, tok, qwen, RenderOptions(4096))
    assert tok.decode(full[0][-1:]) == "\n" and full[1][-1] == IGNORE_INDEX
    ids, labels = render(conv, tok, qwen, RenderOptions(len(full[0]) - 1))
    assert (ids, labels) == (full[0][:-1], full[1][:-1])
    assert trained_text(tok, ids, labels).endswith("</tool_call><|im_end|>25 degrees.<|im_end|>")


# --- item 3: data.prompt_truncation for SFT ----------------------------------------------------------


def long_chat() -> Conversation:
    return Conversation(
        [
            Message("system", "Be brief."),
            Message("user", "First question: " + "alpha " * 60),
            Message("assistant", "First answer: " + "beta " * 60),
            Message("user", "Second question: " + "gamma " * 60),
            Message("assistant", "Second answer: " + "delta " * 60),
            Message("user", "Last question: " + "epsilon " * 80 + "so what is 2+2?"),
            Message("assistant", "It is 4."),
        ]
    )


@pytest.mark.parametrize("max_length", [64, 128])
def test_keep_end_keeps_system_header_the_prompt_end_and_the_answer(tokenizer, own, max_length):
    conv = long_chat()
    with pytest.raises(DropSample):  # only the last answer is trained: the prompt fills max_length
        render_conversation(
            conv, tokenizer, own, RenderOptions(max_length, mask_history=True, prompt_truncation="drop")
        )
    r = render_conversation(conv, tokenizer, own, RenderOptions(max_length, mask_history=True))
    text = tokenizer.decode(r.input_ids)
    assert r.prompt_shortened and len(r.input_ids) <= max_length
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n")
    # the newline after the stop token is left out where it alone would not fit
    assert text.removesuffix("\n").endswith(
        "epsilon so what is 2+2?<|im_end|>\n" + HEADER + "It is 4.<|im_end|>"
    )
    assert "alpha" not in text and "delta" not in text  # the oldest turns went first
    assert ("Last question" in text) == (max_length == 128)  # at 64 the start of the user turn is cut
    assert trained_text(tokenizer, r.input_ids, r.labels) == "It is 4.<|im_end|>"


def test_drop_turns_drops_only_turns(tokenizer, own):
    opts = RenderOptions(128, mask_history=True, prompt_truncation="drop_turns")
    r = render_conversation(long_chat(), tokenizer, own, opts)
    assert r.prompt_shortened and "Last question: epsilon" in tokenizer.decode(r.input_ids)
    with pytest.raises(DropSample) as e:  # the last user turn alone is longer than 64
        render_conversation(
            long_chat(), tokenizer, own, RenderOptions(64, mask_history=True, prompt_truncation="drop_turns")
        )
    assert e.value.reason == NO_TRAINED_TOKEN and "data.prompt_truncation=drop_turns" in e.value.detail


def one_long_question(answer: str = "It is 4.") -> Conversation:
    return Conversation(
        [Message("user", "Tell me: " + "word " * 300 + "what is 2+2?"), Message("assistant", answer)]
    )


def test_drop_turns_drops_a_single_user_turn_too_long(tokenizer, own):
    with pytest.raises(DropSample) as e:
        render_conversation(
            one_long_question(), tokenizer, own, RenderOptions(64, prompt_truncation="drop_turns")
        )
    assert e.value.reason == NO_TRAINED_TOKEN


def test_drop_is_the_old_drop(tokenizer, own):
    conv = one_long_question()
    n = len(render(conv, tokenizer, own, RenderOptions(4096))[0])
    with pytest.raises(DropSample) as e:
        render_conversation(conv, tokenizer, own, RenderOptions(64, prompt_truncation="drop"))
    assert (e.value.reason, e.value.detail) == (NO_TRAINED_TOKEN, f"{n} tokens; max_length 64")


def test_keep_end_cuts_the_start_of_a_single_user_turn(tokenizer, own):
    r = render_conversation(one_long_question(), tokenizer, own, RenderOptions(64))
    text = tokenizer.decode(r.input_ids)
    assert r.prompt_shortened and len(r.input_ids) <= 64 and "Tell me" not in text
    assert text.startswith(SMOL_SYSTEM + "<|im_start|>user\nword word")
    assert text.endswith("what is 2+2?<|im_end|>\n" + HEADER + "It is 4.<|im_end|>")
    assert trained_text(tokenizer, r.input_ids, r.labels) == "It is 4.<|im_end|>"


def test_a_long_answer_gets_half_the_window_then_is_cut(tokenizer, own):
    r = render_conversation(one_long_question("four " * 200), tokenizer, own, RenderOptions(64))
    n_trained = sum(1 for x in r.labels if x != IGNORE_INDEX)
    assert r.prompt_shortened and len(r.input_ids) == 64 and n_trained >= 32
    assert tokenizer.decode(r.input_ids).count(HEADER) == 1


def test_a_prompt_that_leaves_one_answer_token_is_not_shortened(tokenizer, own):
    n_prompt = len(expect(tokenizer, TWO_TURNS[0])[0])
    old = render(three_turns(), tokenizer, own, RenderOptions(n_prompt + 1, prompt_truncation="drop"))
    for policy in ("keep_end", "drop_turns"):
        r = render_conversation(
            three_turns(), tokenizer, own, RenderOptions(n_prompt + 1, prompt_truncation=policy)
        )
        assert not r.prompt_shortened and (r.input_ids, r.labels) == old


def test_a_cut_inside_a_character_leaves_no_replacement_character(tokenizer, own):
    original = "日本語のテキスト、ünïcödé 😀 " * 40
    prompt = Conversation([Message("user", original)])
    for max_length in range(48, 60):  # several cut points, some inside a multi-byte character
        short = shorten_prompt(
            prompt, 1, prompt_measure(tokenizer, own), tokenizer, RenderOptions(max_length)
        )
        kept = short.messages[0].content
        assert kept and "\ufffd" not in kept and original.endswith(kept)
        assert len(kept) < len(original) / 2


def test_a_system_message_too_long_alone_drops_the_sample(tokenizer, own):
    conv = Conversation(
        [Message("system", "rules " * 100), Message("user", "2+2?"), Message("assistant", "4")]
    )
    with pytest.raises(DropSample) as e:
        render_conversation(conv, tokenizer, own, RenderOptions(64))
    assert e.value.reason == NO_TRAINED_TOKEN and "keep_end" in e.value.detail


# --- item 3: preference pairs and KTO samples ------------------------------------------------------


def long_prompt() -> Conversation:
    return Conversation(
        [
            Message("user", "Earlier: " + "alpha " * 50),
            Message("assistant", "Sure: " + "beta " * 50),
            Message("user", "Now: " + "gamma " * 80 + "what is 2+2?"),
        ]
    )


def test_a_pair_is_shortened_once_for_the_longer_answer(tokenizer, own):
    long_answer = ("Five, I think. " * 8).strip()
    pair = PreferencePair(long_prompt(), Message("assistant", "4."), Message("assistant", long_answer))
    kind = get_kind("preference")
    with pytest.raises(DropSample):
        kind.render(pair, tokenizer, own, RenderOptions(96, prompt_truncation="drop"))
    row = kind.render(pair, tokenizer, own, RenderOptions(96))
    c = row.columns
    rejected = len(tokenizer(long_answer + "<|im_end|>", add_special_tokens=False)["input_ids"])
    assert row.prompt_shortened and len(c["rejected_ids"]) == rejected  # both answers whole
    assert tokenizer.decode(c["chosen_ids"]) == "4.<|im_end|>"
    assert len(c["prompt_ids"]) <= prompt_budget(96, rejected)
    prompt = tokenizer.decode(c["prompt_ids"])
    assert prompt.endswith("gamma what is 2+2?<|im_end|>\n" + HEADER) and "alpha" not in prompt
    # one shortened prompt: each answer rendered after it has the same prompt ids
    short = shorten_for_answers(pair.prompt, [pair.chosen, pair.rejected], tokenizer, own, RenderOptions(96))
    (chosen, a), (rejected, b) = (
        kind.render_answer(short, m, tokenizer, own, 96) for m in (pair.chosen, pair.rejected)
    )
    assert chosen[:a] == rejected[:b] == c["prompt_ids"]


def test_a_kto_sample_is_shortened(tokenizer, own):
    sample = UnpairedSample(long_prompt(), Message("assistant", "It is 4."), label=False)
    kind = get_kind("unpaired")
    with pytest.raises(DropSample):
        kind.render(sample, tokenizer, own, RenderOptions(96, prompt_truncation="drop"))
    row = kind.render(sample, tokenizer, own, RenderOptions(96))
    assert row.prompt_shortened and row.tokens <= 96 and row.columns["label"] is False
    assert tokenizer.decode(row.columns["completion_ids"]) == "It is 4.<|im_end|>"
    assert tokenizer.decode(row.columns["prompt_ids"]).endswith("what is 2+2?<|im_end|>\n" + HEADER)
    drop_turns = kind.render(sample, tokenizer, own, RenderOptions(160, prompt_truncation="drop_turns"))
    assert drop_turns.prompt_shortened and "alpha" not in tokenizer.decode(drop_turns.columns["prompt_ids"])


# --- the count in the statistics, the data line and the cache key ----------------------------------

ROWS = [{"instruction": f"q{i}", "input": "", "output": f"answer {i}"} for i in range(6)]
LONG = {"instruction": "long " * 300 + "so?", "input": "", "output": "x"}


def _prepare(tmp_path, tokenizer, model_dir, **data):
    from tuneforge.data.pipeline import prepare_data

    cfg = make_config(tmp_path, model_dir, write_alpaca(tmp_path / "d.json", [*ROWS, LONG, LONG]))
    cfg["data"].update(data)
    config = load_config(None, data=cfg)
    return prepare_data(config, tokenizer, resolve_template("auto", tokenizer), "conversation")


def test_pipeline_counts_shortened_prompts(tmp_path, tokenizer, tiny_llama_dir):
    from tuneforge.training.prepare import _data_summary

    kept = _prepare(tmp_path, tokenizer, tiny_llama_dir)
    assert (kept.stats.samples, kept.stats.prompts_shortened, kept.stats.dropped) == (8, 2, {})
    assert ", 2 prompts shortened (data.prompt_truncation=keep_end)" in _data_summary(kept, "keep_end")
    dropped = _prepare(tmp_path, tokenizer, tiny_llama_dir, prompt_truncation="drop")
    assert dropped.fingerprint != kept.fingerprint and not dropped.cache_hit  # the policy is in the key
    assert (dropped.stats.samples, dropped.stats.prompts_shortened) == (6, 0)
    assert dropped.stats.dropped == {NO_TRAINED_TOKEN: 2}
    assert "prompts shortened" not in _data_summary(dropped, "drop")
    again = _prepare(tmp_path, tokenizer, tiny_llama_dir)
    assert again.cache_hit and again.stats.prompts_shortened == 2


def test_inspect_shows_the_count(tmp_path, tiny_llama_dir, monkeypatch):
    from tuneforge.data.inspect import inspect_data

    monkeypatch.chdir(tmp_path)
    cfg = make_config(tmp_path, tiny_llama_dir, write_alpaca(tmp_path / "d.json", [*ROWS, LONG]))
    out = inspect_data(load_config(None, data=cfg), num_samples=1, color=False)
    assert "prompts shortened: 1 (data.prompt_truncation=keep_end)" in out and "dropped: 0" in out
