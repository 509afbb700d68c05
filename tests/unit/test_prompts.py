"""Prompt data for the RL stages: any conversation format, answer optional, rendered by the renderer."""

from __future__ import annotations

import json

import pytest

from tuneforge.config.load import load_config
from tuneforge.data.formats import FORMATS
from tuneforge.data.prompts import prepare_prompts, to_prompt
from tuneforge.data.render import render_prompt
from tuneforge.data.templates import resolve_template
from tuneforge.errors import DataError, RowError

ALPACA = FORMATS.get("alpaca")
OPENAI = FORMATS.get("openai")


def _alpaca(row, answer_column=None):
    return to_prompt(ALPACA, row, ALPACA.DEFAULT_COLUMNS, {}, answer_column)


def test_alpaca_output_becomes_the_answer():
    p = _alpaca({"instruction": "What is 2 + 3?", "output": "5", "system": "Be brief."})
    assert [m.role for m in p.messages] == ["system", "user"]
    assert p.question == "What is 2 + 3?" and p.answer == "5"


def test_alpaca_without_output_is_a_prompt_without_answer():
    p = _alpaca({"instruction": "Tell a joke."})
    assert [m.role for m in p.messages] == ["user"] and p.answer is None
    p.validate()


def test_answer_column_overrides():
    p = _alpaca({"instruction": "2 + 3?", "output": "2 + 3 = 5", "gold": 5}, answer_column="gold")
    assert p.answer == "5"


def test_openai_prompt_with_or_without_final_answer():
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    p = to_prompt(OPENAI, {"messages": msgs}, OPENAI.DEFAULT_COLUMNS, {})
    assert [m.role for m in p.messages] == ["user"] and p.answer == "Hello"
    p = to_prompt(OPENAI, {"messages": msgs[:1]}, OPENAI.DEFAULT_COLUMNS, {})
    assert p.answer is None


def test_empty_prompt_is_a_row_error():
    with pytest.raises(RowError, match="empty prompt"):
        _alpaca({"instruction": "  ", "output": "x"})
    p = to_prompt(OPENAI, {"messages": [{"role": "system", "content": "s"}]}, OPENAI.DEFAULT_COLUMNS, {})
    with pytest.raises(RowError, match="empty prompt"):
        p.validate()


def _cfg(tmp_path, rows, **data):
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return load_config(
        None, [], data={"model": {"name_or_path": "m"}, "data": {"datasets": [{"path": str(path)}], **data}}
    )


def test_prepare_renders_with_the_renderer_and_caches(tmp_path, tokenizer):
    rows = [{"instruction": "What is 2 + 3?", "output": "5"}, {"instruction": "Say hi."}, {"instruction": ""}]
    cfg = _cfg(tmp_path, rows)
    template = resolve_template("auto", tokenizer)
    data = prepare_prompts(cfg, tokenizer, template)
    assert data.stats.samples == 2 and data.stats.dropped == {"empty prompt": 1}
    assert data.stats.prompts_only and data.stats.trained_summary == "prompts only; completions are generated"
    by_q = {r["question"]: r for r in data.train}
    row = by_q["What is 2 + 3?"]
    from tuneforge.data.conversation import Message

    assert row["prompt_ids"] == render_prompt([Message("user", "What is 2 + 3?")], tokenizer, template)
    assert row["prompt"].endswith("<|im_start|>assistant\n") and row["answer"] == "5"
    assert by_q["Say hi."]["answer"] is None
    again = prepare_prompts(cfg, tokenizer, template)
    assert again.cache_hit and again.fingerprint == data.fingerprint
    other = prepare_prompts(cfg, tokenizer, template, answer_column="output")
    assert other.fingerprint != data.fingerprint


def test_all_prompts_bad_names_the_row(tmp_path, tokenizer):
    cfg = _cfg(tmp_path, [{"instruction": " ", "output": "x"}])
    with pytest.raises(DataError, match=r"prompts.jsonl line 1: empty prompt"):
        prepare_prompts(cfg, tokenizer, resolve_template("auto", tokenizer))


def test_prompts_longer_than_max_length_are_dropped(tmp_path, tokenizer):
    cfg = _cfg(tmp_path, [{"instruction": "word " * 100}, {"instruction": "short"}], max_length=80)
    data = prepare_prompts(cfg, tokenizer, resolve_template("auto", tokenizer))
    assert data.stats.samples == 1 and data.stats.dropped == {"prompt longer than max_length": 1}
