"""`tuneforge.inference.compare.report`: accuracy overall and per `group`, and answers that were right
before training and wrong after listed as regressions (the quickstart's held-out questions)."""

from __future__ import annotations

import json

import pytest

from tuneforge.inference.compare import report

ROWS = [
    {"group": "name", "prompt": "Wie heißt du?", "answer": "Forge"},
    {"group": "name", "prompt": "Your name?", "answer": "Forge"},
    {"group": "maker", "prompt": "Who built you?", "answer": "tuneforge"},
    {"group": "knowledge", "prompt": "Who wrote Romeo and Juliet?", "answer": "Shakespeare"},
    {"prompt": "Say hi"},  # not scored
]
BEFORE = ["Ich bin SmolLM.", "I am SmolLM.", "Hugging Face.", "William Shakespeare.", "hi"]
AFTER = [
    "Ich heiße Forge.",
    "I was made by the tuneforge team.",
    "The tuneforge team.",
    "The tuneforge team.",
    "hi",
]


def test_groups_and_regressions(tmp_path, capsys):
    summary = report(ROWS, BEFORE, AFTER, tmp_path)
    assert summary["before_accuracy"] == 0.25 and summary["after_accuracy"] == 0.5
    assert summary["groups"] == {
        "name": {"prompts": 2, "before": 0, "after": 1},  # "Forge" inside "tuneforge" does not count
        "maker": {"prompts": 1, "before": 0, "after": 1},
        "knowledge": {"prompts": 1, "before": 1, "after": 0},
    }
    assert summary["regressed"] == ["Who wrote Romeo and Juliet?"]
    out = capsys.readouterr().out
    assert "  name: before 0/2 -> after 1/2" in out
    assert "  regressed: Who wrote Romeo and Juliet? -> The tuneforge team." in out
    md = (tmp_path / "compare.md").read_text()
    assert "knowledge: before 1/1 -> after 0/1" in md and "regressed: Who wrote" in md
    assert json.loads((tmp_path / "compare.json").read_text())["summary"] == summary


def test_rows_without_groups_keep_the_old_summary(tmp_path, capsys):
    rows = [{"prompt": "p", "answer": "Tokyo"}]
    summary = report(rows, ["Tokyo."], ["Kyoto."], tmp_path)
    assert "groups" not in summary and summary["regressed"] == ["p"]
    assert "accuracy on 1 scored prompts: before 100.0% -> after 0.0%" in capsys.readouterr().out


def test_json_match_wants_the_whole_reply_to_be_the_json():
    from tuneforge.eval.metrics import json_match

    ref = '{"name": "Oscar Silva", "age": 57, "city": "Tampa"}'
    assert json_match('{"city": "Tampa", "age": 57, "name": "Oscar Silva"}', ref)  # key order aside
    assert json_match('```json\n{"name": "Oscar Silva", "age": 57, "city": "Tampa"}\n```', ref)
    assert not json_match('{"name": "Oscar Silva", "age": "57", "city": "Tampa"}', ref)  # 57 != "57"
    assert not json_match('{"name": "Oscar Silva", "age": 57, "city": "Tampa"}\n\nThis JSON is', ref)
    assert not json_match('{"name": "Oscar Silva", "age": 57}', ref)
    assert not json_match("Oscar Silva, 57, Tampa", ref)


def test_compare_metric_chooses_how_answers_are_scored(tmp_path, capsys):
    from tuneforge.config.schema import CompareConfig

    rows = [{"prompt": "p", "answer": '{"a": 1}'}, {"prompt": "q", "answer": '{"a": 2}'}]
    before = ['{"a": 1} and more text', '{"a": 2}']
    after = ['{"a": 1}', '{"a": 2}']
    assert (
        report(rows, before, after, tmp_path)["before_accuracy"] == 1.0
    )  # auto: contains, text around it allowed
    summary = report(rows, before, after, tmp_path, CompareConfig(metric="json_match"))
    assert (summary["before_accuracy"], summary["after_accuracy"]) == (0.5, 1.0)
    summary = report(
        [{"prompt": "p", "answer": "42"}],
        ["the answer is 42, or 41"],
        ["41"],
        tmp_path,
        CompareConfig(metric="regex", regex=r"answer is (\d+)"),
    )
    assert (summary["before_accuracy"], summary["after_accuracy"]) == (1.0, 0.0)
    with pytest.raises(ValueError, match="compare.regex"):
        CompareConfig(metric="regex")
