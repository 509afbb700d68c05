"""Sources: reading every file type and folders, the origin each row carries into messages, the
structural errors (file, line, fix), drop counting, max_samples and the fingerprint."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from tuneforge.config.schema import DatasetConfig
from tuneforge.data.conversation import Conversation, Document, Message
from tuneforge.data.dataset_registry import DatasetRegistry
from tuneforge.data.sources import load_dataset
from tuneforge.errors import ConfigError, DataError

ROWS = [{"instruction": f"Question {i}?", "input": "", "output": f"Answer {i}."} for i in range(4)]


def qa(i: int) -> Conversation:
    return Conversation([Message("user", f"Question {i}?"), Message("assistant", f"Answer {i}.")])


def load(path, kind: str = "conversation", index: int = 0, **spec):
    return load_dataset(DatasetConfig(path=str(path), **spec), index=index, registry=None, sample_kind=kind)


def error(path, exc=DataError, kind: str = "conversation", **spec) -> str:
    with pytest.raises(exc) as info:
        load(path, kind, **spec)
    return str(info.value)


def jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# --- file types ----------------------------------------------------------------------------------


def test_json_array(tmp_path):
    (tmp_path / "d.json").write_text(json.dumps(ROWS, indent=2))
    ds = load(tmp_path / "d.json")
    assert ds.samples == [qa(i) for i in range(4)] and not ds.dropped and ds.label == str(tmp_path / "d.json")


def test_json_lines_named_json_and_a_single_object(tmp_path):
    assert load(jsonl(tmp_path / "d.json", ROWS)).samples == [qa(i) for i in range(4)]
    (tmp_path / "one.json").write_text(json.dumps(ROWS[1], indent=2))
    assert load(tmp_path / "one.json").samples == [qa(1)]


def test_jsonl_skips_blank_lines_and_reads_a_bom(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps(ROWS[0]).encode() + b"\n\n" + json.dumps(ROWS[1]).encode() + b"\r\n"
    )
    assert load(path).samples == [qa(0), qa(1)]


def test_csv_with_quoted_newlines_and_json_cells(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text(
        "instruction,input,output,history\n"
        '"Question 0?",,"Answer 0.",\n'
        '"Line one\nline two",,"Two lines.","[[""Hi"", ""Hello""]]"\n'
    )
    ds = load(path)
    assert ds.samples == [
        qa(0),
        Conversation(
            [
                Message("user", "Hi"),
                Message("assistant", "Hello"),
                Message("user", "Line one\nline two"),
                Message("assistant", "Two lines."),
            ]
        ),
    ]


def test_parquet_with_nested_conversations(tmp_path):
    rows = [
        {
            "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": f"Hello {i}"}],
            "system": None,
        }
        for i in range(3)
    ]
    pd.DataFrame(rows).to_parquet(tmp_path / "d.parquet")
    ds = load(tmp_path / "d.parquet", format="sharegpt")
    assert ds.samples == [
        Conversation([Message("user", "Hi"), Message("assistant", f"Hello {i}")]) for i in range(3)
    ]


def test_txt_paragraphs_become_documents(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("First paragraph,\nstill the first.\r\n\n   \nSecond one.\n\n\nThird.")
    ds = load(path, kind="document")
    assert ds.samples == [
        Document("First paragraph,\nstill the first."),
        Document("Second one."),
        Document("Third."),
    ]


def test_folder_is_read_recursively_in_order_skipping_hidden_and_registry(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / ".cache").mkdir()
    jsonl(tmp_path / "b" / "2.jsonl", [ROWS[2]])
    pd.DataFrame([ROWS[3]]).to_parquet(tmp_path / "b" / "3.parquet")
    (tmp_path / "a.json").write_text(json.dumps(ROWS[:2]))
    jsonl(tmp_path / ".cache" / "x.jsonl", [ROWS[0]])
    jsonl(tmp_path / ".hidden.jsonl", [ROWS[0]])
    (tmp_path / "dataset_info.json").write_text("{}")
    (tmp_path / "README.md").write_text("# notes")
    assert load(tmp_path).samples == [qa(0), qa(1), qa(2), qa(3)]


def test_default_format_is_text_for_txt_folders_and_document_stages(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("Alpha.")
    with pytest.raises(ConfigError, match="gives plain text but this stage trains on conversations"):
        load(tmp_path / "docs")
    assert load(tmp_path / "docs", kind="document").samples == [Document("Alpha.")]
    assert load(jsonl(tmp_path / "t.jsonl", [{"text": "Beta."}]), kind="document").samples == [
        Document("Beta.")
    ]


# --- structural errors name file, line and fix ---------------------------------------------------


def test_malformed_jsonl_names_the_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(
        json.dumps(ROWS[0]) + "\n" + json.dumps(ROWS[1]) + '\n{"instruction": "a" "output": "b"}\n'
    )
    msg = error(path)
    assert "x.jsonl line 3: invalid JSON (Expecting ',' delimiter: column 21); fix or delete that line" in msg


def test_malformed_json_array_names_jsons_line(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(
        '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "a", "output": "b"}\n  {"instruction": "c"}\n]'
    )
    assert "x.json line 4: invalid JSON (Expecting ',' delimiter" in error(path)
    path.write_text('[{"instruction": "a", "output": "b"}] trailing')
    assert "x.json line 1: invalid JSON (Extra data" in error(path)
    path.write_text('{\n  "instruction": "a",\n  "output": \n}')
    assert "x.json line 4: invalid JSON (Expecting value" in error(path)


def test_a_row_that_is_not_an_object(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('[\n  {"instruction": "a", "output": "b"},\n  "just text"\n]')
    assert "x.json line 3: expected a JSON object" in error(path)


def test_csv_with_too_many_cells(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("instruction,output\nHi,Hello\nHi, there,Hello\n")
    assert "x.csv line 3: 3 cells but the header has 2; quote cells that contain commas" in error(path)


def test_not_utf8_and_unsupported_and_missing_files(tmp_path):
    (tmp_path / "x.jsonl").write_bytes(json.dumps(ROWS[0]).encode() + b'\n{"instruction": "caf\xe9"}\n')
    assert "x.jsonl line 2: not UTF-8 text" in error(tmp_path / "x.jsonl")
    (tmp_path / "x.tsv").write_text("a\tb\n")
    assert "unsupported file type '.tsv'" in error(tmp_path / "x.tsv")
    assert "data.datasets[0].path" in error(tmp_path / "missing.jsonl") and "not found" in error(
        tmp_path / "missing.jsonl"
    )
    (tmp_path / "empty").mkdir()
    assert "holds no data files" in error(tmp_path / "empty")
    assert "not a readable Parquet file" in error(jsonl(tmp_path / "fake.parquet", ROWS))


def test_missing_column_names_file_column_columns_and_fix(tmp_path):
    path = tmp_path / "cols.json"
    path.write_text(json.dumps([{"question": "a", "answer": "b"}]))
    msg = error(path, index=2)
    assert "cols.json: no column 'instruction'" in msg
    assert "the file's columns are: answer, question" in msg
    assert "set data.datasets[2].columns.instruction: <your column>" in msg.lower()


def test_missing_column_suggests_a_close_one(tmp_path):
    path = jsonl(tmp_path / "d.jsonl", [{"instructions": "a", "output": "b"}])
    assert "Did you mean 'instructions'?" in error(path)


def test_an_explicitly_mapped_optional_column_must_exist(tmp_path):
    path = jsonl(tmp_path / "d.jsonl", ROWS)
    msg = error(path, columns={"system": "sys_prompt"})
    assert "no column 'sys_prompt', which format alpaca reads as its 'system' field" in msg


def test_config_errors_for_columns_tags_and_format(tmp_path):
    path = jsonl(tmp_path / "d.jsonl", ROWS)
    msg = error(path, ConfigError, columns={"prompt": "q"})
    assert (
        "data.datasets[0].columns.prompt" in msg and "LLaMA-Factory's 'prompt' is 'instruction' here" in msg
    )
    assert "did you mean 'output'" in error(path, ConfigError, columns={"ouput": "a"})
    assert "format alpaca takes no tags" in error(path, ConfigError, tags={"role_tag": "from"})
    assert "did you mean 'role_tag'" in error(path, ConfigError, format="sharegpt", tags={"rol_tag": "x"})
    msg = error(path, ConfigError, format="alpacca")
    assert "data.datasets[0].format" in msg and "'alpaca'" in msg
    msg = error(path, ConfigError, kind="document", format="alpaca")
    assert "format alpaca gives conversations but this stage trains on plain text" in msg
    assert "data.datasets[0].format: text" in msg


def test_hub_name_that_cannot_be_loaded_offline(tmp_path):
    msg = error("no-such-owner/no-such-dataset")
    assert (
        "'no-such-owner/no-such-dataset' is not a local file or folder, and loading it from the hub failed:"
        in msg
    )
    assert "Check the path" in msg


def test_hub_dataset_rows_carry_row_numbers(monkeypatch):
    calls = []

    def fake_load(name, subset, split):
        calls.append((name, subset, split))
        return [ROWS[0], {"instruction": "x", "output": ""}, ROWS[1]]

    monkeypatch.setattr("datasets.load_dataset", fake_load)
    ds = load("owner/set", split="validation", subset="en")
    assert calls == [("owner/set", "en", "validation")]
    assert ds.samples == [qa(0), qa(1)] and ds.dropped == {"empty answer": 1}
    assert load("owner/set", split="test").fingerprint != ds.fingerprint
    monkeypatch.setattr("datasets.load_dataset", lambda *a, **k: [{"instruction": "x", "output": ""}] * 2)
    assert "first dropped: owner/set row 1: empty answer" in error("owner/set")


# --- dropping, max_samples, fingerprint ----------------------------------------------------------


def test_unusable_rows_are_dropped_and_counted(tmp_path, caplog):
    rows = ROWS + [
        {"instruction": "Hi", "input": "", "output": ""},
        {"instruction": "Hi", "input": "", "output": " "},
        {"instruction": "", "input": "", "output": "x"},
    ]
    with caplog.at_level(logging.WARNING, logger="tuneforge.data.sources"):
        ds = load(jsonl(tmp_path / "d.jsonl", rows))
    assert ds.samples == [qa(i) for i in range(4)]
    assert ds.dropped == {"empty answer": 2, "empty prompt": 1}
    assert (
        sum("d.jsonl line 5: empty answer" in r.getMessage() for r in caplog.records) == 1
    )  # first one only


def test_no_usable_samples_lists_reasons_and_the_first_dropped_row(tmp_path):
    rows = [
        {"conversations": [{"from": "gpt", "value": "x"}, {"from": "human", "value": "y"}]},
        {"conversations": []},
        {"conversations": [{"from": "gpt", "value": "x"}]},
    ]
    (tmp_path / "chat.json").write_text(json.dumps(rows, indent=1))
    msg = error(tmp_path / "chat.json", format="sharegpt")
    assert (
        "data.datasets[0] (" in msg
        and "no usable samples after filtering (3 dropped: bad turn order x2, no messages x1)" in msg
    )
    assert "first dropped: " in msg and "chat.json line 2: bad turn order: conversations[0] is 'gpt'" in msg


def test_empty_source(tmp_path):
    (tmp_path / "e.jsonl").write_text("\n\n")
    assert "no usable samples after filtering (the source has no rows)" in error(tmp_path / "e.jsonl")
    (tmp_path / "e.json").write_text("[]")
    assert "(the source has no rows)" in error(tmp_path / "e.json")


def test_max_samples_takes_the_first_rows_across_files(tmp_path):
    jsonl(tmp_path / "a.jsonl", [ROWS[0], {"instruction": "x", "output": ""}])
    jsonl(tmp_path / "b.jsonl", ROWS[1:])
    (tmp_path / "c.jsonl").write_text("{broken\n")  # never read: the budget ends in b.jsonl
    ds = load(tmp_path, max_samples=3)
    assert ds.samples == [qa(0), qa(1)] and ds.dropped == {"empty answer": 1}


def test_fingerprint_follows_content_and_settings_not_location(tmp_path):
    a = jsonl(tmp_path / "a.jsonl", ROWS)
    (tmp_path / "elsewhere").mkdir()
    b = jsonl(tmp_path / "elsewhere" / "a.jsonl", ROWS)
    base = load(a).fingerprint
    assert len(base) == 64 and load(b).fingerprint == base
    assert load(a, max_samples=2).fingerprint != base
    assert load(a, columns={"input": "input"}).fingerprint == base  # the default, spelled out
    assert load(a, columns={"output": "instruction"}).fingerprint != base
    jsonl(a, ROWS[:3])
    assert load(a).fingerprint != base


# --- paths and registries ------------------------------------------------------------------------


def test_relative_paths_start_from_base_dir(tmp_path):
    jsonl(tmp_path / "d.jsonl", ROWS)
    spec = DatasetConfig(path="d.jsonl")
    ds = load_dataset(spec, index=0, registry=None, sample_kind="conversation", base_dir=tmp_path)
    assert len(ds.samples) == 4
    with pytest.raises(DataError, match="relative paths start from"):
        load_dataset(
            DatasetConfig(path="nope.jsonl"),
            index=0,
            registry=None,
            sample_kind="conversation",
            base_dir=tmp_path,
        )


def test_registry_name_with_user_overrides(tmp_path):
    jsonl(
        tmp_path / "qa.jsonl",
        [{"q": f"Question {i}?", "a": f"Answer {i}.", "alt": "other"} for i in range(4)],
    )
    (tmp_path / "dataset_info.json").write_text(
        json.dumps({"qa": {"file_name": "qa.jsonl", "columns": {"prompt": "q", "response": "a"}}})
    )
    registry = DatasetRegistry.from_file(tmp_path / "dataset_info.json")
    ds = load_dataset(
        DatasetConfig(name="qa", max_samples=2), index=1, registry=registry, sample_kind="conversation"
    )
    assert ds.label == "qa" and ds.samples == [qa(0), qa(1)]
    ds = load_dataset(
        DatasetConfig(name="qa", columns={"output": "alt"}),
        index=1,
        registry=registry,
        sample_kind="conversation",
    )
    assert ds.samples[0].messages[1] == Message("assistant", "other")
    with pytest.raises(ConfigError, match=r"data.datasets\[1\].name: 'qa' names a registry entry"):
        load_dataset(DatasetConfig(name="qa"), index=1, registry=None, sample_kind="conversation")


def test_section_names_eval_datasets(tmp_path):
    (tmp_path / "e.jsonl").write_text("")
    with pytest.raises(DataError, match=r"data.eval_datasets\[0\]"):
        load_dataset(
            DatasetConfig(path=str(tmp_path / "e.jsonl")),
            index=0,
            registry=None,
            sample_kind="conversation",
            section="data.eval_datasets",
        )
