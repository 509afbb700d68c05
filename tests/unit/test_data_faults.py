"""Faults found by hunting the data path: inputs that gave a traceback, lost rows silently or trained
wrong text. Each now gives a one-line DataError naming file and line, or a dropped row counted under a
reason (and shown), or a warning."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers.runs import make_config, write_alpaca
from tuneforge.config.load import load_config
from tuneforge.config.schema import DatasetConfig
from tuneforge.data.conversation import Conversation, Message
from tuneforge.data.formats import FORMATS
from tuneforge.data.sources import load_dataset
from tuneforge.data.templates import resolve_template
from tuneforge.errors import DataError

ROWS = [{"instruction": f"Question {i}?", "input": "", "output": f"Answer {i}."} for i in range(4)]
DEEP = "[" * 100_000 + "]" * 100_000
MISSING_OUTPUT = "missing value in column 'output'"
LONE = "invalid unicode (lone surrogate)"


def load(path, kind: str = "conversation", **spec):
    return load_dataset(DatasetConfig(path=str(path), **spec), index=0, registry=None, sample_kind=kind)


def error(path, kind: str = "conversation", **spec) -> str:
    with pytest.raises(DataError) as info:
        load(path, kind, **spec)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def prepare(tmp_path, tokenizer, model_dir, data_path, **data):
    from tuneforge.data.pipeline import prepare_data

    cfg = make_config(tmp_path, model_dir, data_path)
    cfg["data"].update({"cache_dir": str(tmp_path / "cache"), **data})
    config = load_config(None, data=cfg)
    return config, prepare_data(config, tokenizer, resolve_template("auto", tokenizer), "conversation")


# --- 1. a CSV quote left open ---------------------------------------------------------------------


def _csv(path: Path, changes: dict[int, str]) -> Path:
    """A 1,000-row CSV (header on line 1, so row i is on line i + 2) with some lines replaced."""
    lines = [f"Question {i}?,Answer {i}.\n" for i in range(1000)]
    for line, text in changes.items():
        lines[line - 2] = text
    path.write_text("instruction,output\n" + "".join(lines))
    return path


def test_unterminated_csv_quote_fails_with_its_line(tmp_path):
    msg = error(_csv(tmp_path / "x.csv", {11: '"Question 9?,Answer 9.\n'}))
    assert "x.csv line 11: unterminated quote" in msg and "fix the quoting" in msg


def test_a_stray_quote_closed_by_a_later_one_names_where_the_cell_opened(tmp_path):
    path = _csv(tmp_path / "x.csv", {11: '"Question 9?,Answer 9.\n', 30: 'He said "yes" twice,ok\n'})
    msg = error(path)
    assert "x.csv line 11:" in msg and "line 30" in msg and "fix the quoting" in msg


def test_quotes_inside_unquoted_cells_and_doubled_quotes_still_read(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text('instruction,output\nA 5" screen?,Big.\n"Say ""hi""",hi\n')
    assert [s.messages[0].content for s in load(path).samples] == ['A 5" screen?', 'Say "hi"']


# --- 2. a damaged tokenized-data cache ------------------------------------------------------------


def _damage(folder: Path, damage: str) -> None:
    if damage == "truncated Arrow file":
        arrow = next((folder / "train").glob("*.arrow"))
        data = arrow.read_bytes()
        arrow.write_bytes(data[: len(data) // 2])
    elif damage == "broken stats.json":
        (folder / "stats.json").write_text('{"samples": 3, "tok')
    else:
        (folder / "train" / "state.json").unlink()


@pytest.mark.parametrize("damage", ["truncated Arrow file", "broken stats.json", "missing file"])
def test_damaged_cache_is_rebuilt(damage, tmp_path, tokenizer, tiny_llama_dir, caplog):
    from tuneforge.data.pipeline import cache_root

    path = write_alpaca(tmp_path / "a.json", ROWS)
    config, first = prepare(tmp_path, tokenizer, tiny_llama_dir, path)
    folder = cache_root(config) / first.fingerprint
    _damage(folder, damage)
    with caplog.at_level(logging.WARNING, logger="tuneforge"):
        _, second = prepare(tmp_path, tokenizer, tiny_llama_dir, path)
    assert not second.cache_hit and second.train["input_ids"] == first.train["input_ids"]
    warnings = [r.getMessage() for r in caplog.records if "is damaged" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith(f"cached data in {folder} is damaged (")
    assert warnings[0].endswith("); rebuilding")
    _, third = prepare(tmp_path, tokenizer, tiny_llama_dir, path)
    assert third.cache_hit and third.train["labels"] == first.train["labels"]


def test_a_cache_with_fewer_rows_than_its_stats_is_rebuilt(tmp_path, tokenizer, tiny_llama_dir, caplog):
    from tuneforge.data.pipeline import cache_root

    path = write_alpaca(tmp_path / "a.json", ROWS)
    config, first = prepare(tmp_path, tokenizer, tiny_llama_dir, path)
    stats_file = cache_root(config) / first.fingerprint / "stats.json"
    stats_file.write_text(json.dumps({**json.loads(stats_file.read_text()), "samples": 99}))
    with caplog.at_level(logging.WARNING, logger="tuneforge"):
        _, second = prepare(tmp_path, tokenizer, tiny_llama_dir, path)
    assert not second.cache_hit and second.stats.samples == 4
    assert any("is damaged" in r.getMessage() for r in caplog.records)


# --- 3. JSON nested too deeply --------------------------------------------------------------------


def test_deeply_nested_json_is_a_one_line_error(tmp_path):
    good = json.dumps(ROWS[0])
    (tmp_path / "x.jsonl").write_text(f'{good}\n{{"instruction": {DEEP}, "output": "a"}}\n')
    msg = error(tmp_path / "x.jsonl")
    assert "x.jsonl line 2: JSON nested too deeply" in msg
    (tmp_path / "x.json").write_text(f'[\n  {good},\n  {{"instruction": {DEEP}, "output": "a"}}\n]')
    assert "x.json line 3: JSON nested too deeply" in error(tmp_path / "x.json")
    (tmp_path / "one.json").write_text(f'{{\n  "instruction": {DEEP}\n}}')
    assert "one.json line 1: JSON nested too deeply" in error(tmp_path / "one.json")
    (tmp_path / "first.jsonl").write_text(f'{{"instruction": {DEEP}, "output": "a"}}\n{good}\n')
    assert "first.jsonl line 1: JSON nested too deeply" in error(tmp_path / "first.jsonl")


def test_deeply_nested_json_in_a_cell_drops_the_row(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(f'instruction,output,history\nQuestion 0?,Answer 0.,\nQ,A,"{DEEP}"\n')
    assert load(path).dropped == {"bad history": 1}


# --- 4. a lone surrogate --------------------------------------------------------------------------


def test_lone_surrogate_drops_the_row_and_the_rest_trains(tmp_path, tokenizer, tiny_llama_dir):
    rows = [
        *ROWS,
        {"instruction": "Bad \ud800 text", "output": "x"},
        {"instruction": "Smile \U0001f600", "output": "ok"},
    ]
    path = jsonl(tmp_path / "s.jsonl", rows)  # json.dumps writes both as \\u escapes
    assert "\\ud800" in path.read_text() and "\\ud83d\\ude00" in path.read_text()
    ds = load(path)
    assert ds.dropped == {LONE: 1} and len(ds.samples) == 5
    assert ds.samples[-1].messages[0].content == "Smile \U0001f600"
    _, data = prepare(tmp_path, tokenizer, tiny_llama_dir, path, datasets=[{"path": str(path)}])
    assert data.stats.samples == 5 and data.stats.dropped == {LONE: 1}


def test_lone_surrogate_in_a_key_or_a_nested_value(tmp_path):
    def chat(answer: str, **extra) -> dict:
        return {
            "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": answer}],
            **extra,
        }

    rows = [chat("Hello"), chat("\udc00"), chat("Yo", **{"\udfff": 1})]
    assert load(jsonl(tmp_path / "s.jsonl", rows), format="openai").dropped == {LONE: 2}


# --- 5. dropped samples are shown -----------------------------------------------------------------


def test_dropped_examples_name_file_row_and_reason(tmp_path, tokenizer, tiny_llama_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [*ROWS, {"instruction": "long " * 300, "input": "", "output": "x"}]
    path = write_alpaca(tmp_path / "long.json", rows)  # one line: rows are named by their number
    config, data = prepare(tmp_path, tokenizer, tiny_llama_dir, path, prompt_truncation="drop")
    [example] = data.stats.dropped_examples
    assert example.startswith("long.json line 1, row 5: no trained token within max_length (")
    assert example.endswith("tokens; max_length 64)")
    _, again = prepare(tmp_path, tokenizer, tiny_llama_dir, path, prompt_truncation="drop")
    assert again.cache_hit and again.stats.dropped_examples == [example]


def test_dropped_examples_mix_load_and_render_drops_first_of_each_reason(
    tmp_path, tokenizer, tiny_llama_dir, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    long = {"instruction": "long " * 300, "input": "", "output": "x"}
    rows = [long, long, *ROWS, {"instruction": "Hi", "output": ""}, long, long, long, long]
    path = jsonl(tmp_path / "d.jsonl", rows)
    _, data = prepare(
        tmp_path, tokenizer, tiny_llama_dir, path, datasets=[{"path": str(path)}], prompt_truncation="drop"
    )
    examples = data.stats.dropped_examples
    assert len(examples) == 5 and data.stats.dropped == {
        "empty answer": 1,
        "no trained token within max_length": 6,
    }
    assert examples[0] == "d.jsonl line 7: empty answer: 'output' is empty"
    assert all(e.startswith("d.jsonl line ") for e in examples)


def test_old_stats_json_without_dropped_examples_still_loads(tmp_path, tokenizer, tiny_llama_dir):
    from tuneforge.data.pipeline import cache_root

    path = write_alpaca(tmp_path / "a.json", ROWS)
    config, first = prepare(tmp_path, tokenizer, tiny_llama_dir, path)
    stats_file = cache_root(config) / first.fingerprint / "stats.json"
    old = json.loads(stats_file.read_text())
    del old["dropped_examples"]
    stats_file.write_text(json.dumps(old))
    _, second = prepare(tmp_path, tokenizer, tiny_llama_dir, path)
    assert second.cache_hit and second.stats.dropped_examples == []


def test_inspect_shows_the_dropped_examples(tmp_path, tiny_llama_dir, monkeypatch):
    from tuneforge.data.inspect import inspect_data

    monkeypatch.chdir(tmp_path)
    rows = [*ROWS, {"instruction": "long " * 300, "input": "", "output": "x"}]
    cfg = make_config(tmp_path, tiny_llama_dir, write_alpaca(tmp_path / "long.json", rows))
    cfg["data"]["cache_dir"] = str(tmp_path / "cache")
    cfg["data"]["prompt_truncation"] = "drop"  # keep_end would keep it, shortened
    out = inspect_data(load_config(None, data=cfg), num_samples=1, color=False)
    assert "dropped: 1" in out
    assert "  long.json line 1, row 5: no trained token within max_length (" in out


# --- 6. empty assistant replies -------------------------------------------------------------------

EMPTY_REPLIES = {
    "alpaca": ({"instruction": "Hi", "output": "Hello"}, {"instruction": "Hi", "output": "  "}),
    "sharegpt": (
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": ""}]},
    ),
    "openai": (
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None}]},
    ),
    "openai, an earlier turn": (
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
        {
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": " \n"},
                {"role": "user", "content": "Hello?"},
                {"role": "assistant", "content": "Sorry, hello."},
            ]
        },
    ),
}


@pytest.mark.parametrize("case", EMPTY_REPLIES)
def test_an_empty_assistant_reply_is_dropped_in_every_format(case, tmp_path):
    good, empty = EMPTY_REPLIES[case]
    ds = load(jsonl(tmp_path / "d.jsonl", [good, empty]), format=case.split(",")[0])
    assert len(ds.samples) == 1 and ds.dropped == {"empty answer": 1}


def test_a_reply_that_only_calls_a_tool_or_is_never_trained_is_kept(tmp_path):
    call = {"function": {"name": "f", "arguments": "{}"}}
    rows = [
        {
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "", "tool_calls": [call]},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "", "weight": 0},
                {"role": "user", "content": "Again"},
                {"role": "assistant", "content": "Hello"},
            ]
        },
    ]
    assert not load(jsonl(tmp_path / "d.jsonl", rows), format="openai").dropped


# --- 7. NaN and null values -----------------------------------------------------------------------


def test_an_empty_csv_answer_cell_is_a_missing_value(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("instruction,input,output\nQuestion 0?,,Answer 0.\nQuestion 1?,,\nQuestion 2?\n")
    ds = load(path)
    assert len(ds.samples) == 1 and ds.dropped == {MISSING_OUTPUT: 2}


def test_nan_is_never_trained_as_text(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(
        json.dumps(ROWS[0])
        + '\n{"instruction": "Q", "output": NaN}\n{"instruction": "Q", "output": "A", "system": NaN}\n'
    )
    ds = load(path)
    assert ds.dropped == {MISSING_OUTPUT: 1}
    assert ds.samples[1] == Conversation([Message("user", "Q"), Message("assistant", "A")])


def test_parquet_nan_and_null_answers_are_missing(tmp_path):
    table = pa.table({"instruction": ["a", "b", "c"], "output": pa.array([1.5, float("nan"), None])})
    pq.write_table(table, tmp_path / "d.parquet")
    ds = load(tmp_path / "d.parquet")
    assert [s.messages[1].content for s in ds.samples] == ["1.5"] and ds.dropped == {MISSING_OUTPUT: 2}


@pytest.mark.parametrize(
    "fmt, row, reason",
    [
        ("sharegpt", {"conversations": None}, "missing value in column 'conversations'"),
        ("openai", {"messages": float("nan")}, "missing value in column 'messages'"),
        ("text", {"text": float("nan")}, "missing value in column 'text'"),
        ("alpaca", {"instruction": float("nan"), "output": "x"}, "missing value in column 'instruction'"),
    ],
)
def test_missing_values_in_every_format(fmt, row, reason):
    from tuneforge.data.sources import drop_reason
    from tuneforge.errors import RowError

    mod = FORMATS.get(fmt)
    with pytest.raises(RowError) as info:
        mod.convert(row, mod.DEFAULT_COLUMNS, getattr(mod, "DEFAULT_TAGS", {})).validate()
    assert drop_reason(info.value) == reason


def test_nan_answers_in_prompt_and_preference_data(tmp_path):
    from tuneforge.data.prompts import to_prompt

    alpaca = FORMATS.get("alpaca")
    p = to_prompt(alpaca, {"instruction": "Q", "output": float("nan")}, alpaca.DEFAULT_COLUMNS, {})
    assert p.answer is None
    p = to_prompt(alpaca, {"instruction": "Q", "gold": float("nan")}, alpaca.DEFAULT_COLUMNS, {}, "gold")
    assert p.answer is None
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"instruction": "Q", "chosen": "a", "rejected": "b"}\n{"instruction": "Q", "chosen": NaN, "rejected": "b"}\n'
    )
    assert load(path, kind="preference").dropped == {"missing chosen": 1}


# --- 8. images given to a text model --------------------------------------------------------------


def test_images_are_reported_once_per_source(tmp_path, caplog, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [
        {**ROWS[0], "images": ["a.png"]},
        {**ROWS[1], "images": ["b.png", "c.png"]},
        {**ROWS[2], "instruction": "<image>What is this?"},
        {**ROWS[3], "images": []},
    ]
    (tmp_path / "d").mkdir()
    jsonl(tmp_path / "d" / "a.jsonl", rows)
    jsonl(tmp_path / "d" / "b.jsonl", ROWS)
    with caplog.at_level(logging.WARNING, logger="tuneforge"):
        load(tmp_path / "d")
    warned = [r.getMessage() for r in caplog.records if "vision-language" in r.getMessage()]
    assert warned == [
        "d/a.jsonl: 3 rows have an 'images' column or <image> placeholders; this model reads text only, "
        "so the images are ignored (vision-language models are not supported yet)"
    ]


# --- other inputs that gave a traceback -----------------------------------------------------------


def test_a_number_too_long_for_python_is_a_one_line_error(tmp_path):
    (tmp_path / "n.jsonl").write_text(
        json.dumps(ROWS[0]) + '\n{"instruction": "Q", "output": ' + "9" * 5000 + "}\n"
    )
    msg = error(tmp_path / "n.jsonl")
    assert "n.jsonl line 2: invalid JSON" in msg and "4300" in msg


def test_a_duplicated_csv_column_is_refused(tmp_path):
    (tmp_path / "d.csv").write_text("instruction,output,output\nQ,A,B\n")
    assert "d.csv line 1: the header names the column 'output' twice" in error(tmp_path / "d.csv")


@pytest.mark.parametrize(
    "fmt, row, reason",
    [
        (
            "sharegpt",
            {"conversations": [{"from": ["human"], "value": "Hi"}, {"from": "gpt", "value": "x"}]},
            "unknown role",
        ),
        (
            "alpaca",
            {"instruction": "Hi", "output": "x", "tools": [{"type": "function", "function": {"name": 5}}]},
            "bad tools",
        ),
        (
            "openai",
            {
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": DEEP}}]},
                ]
            },
            "bad tool call",
        ),
        (
            "openai",
            {
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "tool_calls": [{"id": [1], "function": {"name": "f"}}]},
                ]
            },
            "bad tool call id",
        ),
    ],
)
def test_odd_values_are_dropped_rows_not_tracebacks(fmt, row, reason, tmp_path):
    good = EMPTY_REPLIES[fmt][0] if fmt in EMPTY_REPLIES else ROWS[0]
    ds = load(jsonl(tmp_path / "d.jsonl", [good, row]), format=fmt)
    assert ds.dropped == {reason: 1}


def test_a_template_that_recurses_too_deep_drops_the_sample(tokenizer):
    import sys

    from tuneforge.data.render import DropSample, RenderOptions, render_conversation

    deep: dict = {}
    cur = deep
    for _ in range(sys.getrecursionlimit() + 100):  # deeper than any stack this test runs on can walk
        cur["a"] = {}
        cur = cur["a"]
    tools = [{"type": "function", "function": {"name": "f", "parameters": deep}}]
    conv = Conversation([Message("user", "Hi"), Message("assistant", "Yo")], tools=tools)
    with pytest.raises(DropSample) as info:
        render_conversation(conv, tokenizer, resolve_template("auto", tokenizer), RenderOptions(512))
    assert info.value.reason == "nested too deeply to render"
