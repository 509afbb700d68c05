"""Every kind of bad input gives a one-line error naming the file, row or key, and exit code 2."""

from __future__ import annotations

import json

import pytest

from tests.helpers.runs import make_config, run_cli, write_alpaca, write_config


def _train(tmp_path, capsys, cfg, *overrides):
    code, out, err = run_cli(capsys, "train", str(write_config(tmp_path, cfg)), *overrides)
    assert code == 2, (out, err)
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_malformed_json_names_the_line(tmp_path, tiny_llama_dir, capsys):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "a" "output": "b"}\n')
    msg = _train(tmp_path, capsys, make_config(tmp_path, tiny_llama_dir, data))
    assert "bad.jsonl" in msg and "line 2" in msg


def test_missing_column_lists_columns(tmp_path, tiny_llama_dir, capsys):
    data = tmp_path / "cols.json"
    data.write_text(json.dumps([{"question": "a", "answer": "b"}]))
    msg = _train(tmp_path, capsys, make_config(tmp_path, tiny_llama_dir, data))
    assert "cols.json" in msg and "instruction" in msg and "question" in msg and "columns" in msg


def test_unknown_format(tmp_path, tiny_llama_dir, capsys):
    cfg = make_config(tmp_path, tiny_llama_dir, write_alpaca(tmp_path / "d.json"))
    cfg["data"]["datasets"][0]["format"] = "alpacca"
    msg = _train(tmp_path, capsys, cfg)
    assert "alpacca" in msg and "alpaca" in msg


def test_empty_after_filtering(tmp_path, tiny_llama_dir, capsys):
    data = tmp_path / "empty.json"
    data.write_text(json.dumps([{"instruction": "a", "input": "", "output": ""}] * 3))
    msg = _train(tmp_path, capsys, make_config(tmp_path, tiny_llama_dir, data))
    assert "no usable samples" in msg


def test_everything_truncated_away(tmp_path, tiny_llama_dir, capsys):
    data = write_alpaca(
        tmp_path / "d.json", [{"instruction": "word " * 200, "input": "", "output": "ok"}] * 2
    )
    msg = _train(tmp_path, capsys, make_config(tmp_path, tiny_llama_dir, data), "data.max_length=16")
    assert "no usable samples" in msg and "max_length" in msg


def test_model_path_missing(tmp_path, capsys):
    cfg = make_config(tmp_path, tmp_path / "no-such-model", write_alpaca(tmp_path / "d.json"))
    msg = _train(tmp_path, capsys, cfg)
    assert "no-such-model" in msg


def test_template_the_tokenizer_cannot_support(tmp_path, tiny_llama_dir, capsys):
    cfg = make_config(tmp_path, tiny_llama_dir, write_alpaca(tmp_path / "d.json"))
    msg = _train(tmp_path, capsys, cfg, "data.template=llama3")
    assert "llama3" in msg and "<|eot_id|>" in msg


@pytest.mark.parametrize(
    "override, expected",
    [
        ("train.learnig_rate=1e-4", "did you mean train.learning_rate"),
        ("train.max_steps=many", "train.max_steps"),
    ],
)
def test_config_key_errors(tmp_path, tiny_llama_dir, capsys, override, expected):
    cfg = make_config(tmp_path, tiny_llama_dir, write_alpaca(tmp_path / "d.json"))
    msg = _train(tmp_path, capsys, cfg, override)
    assert expected in msg
