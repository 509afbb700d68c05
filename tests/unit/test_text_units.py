""".txt sources split by ``text_unit``: paragraphs (the default for a path), lines (LLaMA-Factory's
way, the default for dataset-registry entries) or the whole file; refused where it cannot apply."""

from __future__ import annotations

import json

import pytest

from tuneforge.config.schema import DatasetConfig
from tuneforge.data.dataset_registry import DatasetRegistry
from tuneforge.data.sources import load_dataset
from tuneforge.errors import ConfigError

# like LLaMA-Factory's wiki_demo.txt: one document per line, no blank lines between them
WIKI = "Anarchism is a political philosophy.\r\nAutism is a neurodevelopmental disorder.\n\n   \nAlbedo is the fraction of light.\n"
TEXT = "First paragraph,\nstill the first.\n\nSecond one.\n"


def load(registry=None, **spec) -> list[tuple[str, str]]:
    """(where each document starts, its text)."""
    ds = load_dataset(DatasetConfig(**spec), index=0, registry=registry, sample_kind="document")
    return [(" ".join(s.origin.split()[-2:]), s.text) for s in ds.samples]


def test_paragraph_is_the_default_for_a_path(tmp_path):
    (tmp_path / "t.txt").write_text(TEXT)
    assert load(path=str(tmp_path / "t.txt")) == [
        ("line 1", "First paragraph,\nstill the first."),
        ("line 4", "Second one."),
    ]


def test_line_reads_each_non_blank_line(tmp_path):
    (tmp_path / "wiki.txt").write_text(WIKI)
    assert load(path=str(tmp_path / "wiki.txt"), text_unit="line") == [
        ("line 1", "Anarchism is a political philosophy."),
        ("line 2", "Autism is a neurodevelopmental disorder."),
        ("line 5", "Albedo is the fraction of light."),
    ]


def test_file_reads_the_whole_file_as_one_document(tmp_path):
    (tmp_path / "t.txt").write_text("\n\n" + TEXT + "\n\n")
    assert load(path=str(tmp_path / "t.txt"), text_unit="file") == [
        ("line 3", "First paragraph,\nstill the first.\n\nSecond one.")
    ]


def test_text_unit_on_a_source_without_txt_files_is_refused(tmp_path):
    (tmp_path / "d.jsonl").write_text(json.dumps({"text": "Alpha."}) + "\n")
    with pytest.raises(ConfigError) as e:
        load(path=str(tmp_path / "d.jsonl"), text_unit="line")
    assert str(e.value).startswith("data.datasets[0].text_unit: 'line' splits .txt files, and ")
    assert str(e.value).endswith("d.jsonl has none; remove text_unit")


def test_text_unit_changes_the_fingerprint(tmp_path):
    (tmp_path / "t.txt").write_text(TEXT)

    def fingerprint(**spec):
        ds = load_dataset(
            DatasetConfig(path=str(tmp_path / "t.txt"), **spec),
            index=0,
            registry=None,
            sample_kind="document",
        )
        return ds.fingerprint

    assert len({fingerprint(), fingerprint(text_unit="line"), fingerprint(text_unit="file")}) == 3


def test_registry_entries_read_txt_by_line_as_llamafactory_does(tmp_path):
    (tmp_path / "wiki.txt").write_text(WIKI)
    (tmp_path / "t.txt").write_text(TEXT)
    info = {  # wiki_demo as in LLaMA-Factory's data/dataset_info.json
        "wiki_demo": {"file_name": "wiki.txt", "columns": {"prompt": "text"}},
        "book": {"file_name": "t.txt", "text_unit": "paragraph"},
    }
    reg = DatasetRegistry(info, tmp_path / "dataset_info.json")
    assert len(load(reg, name="wiki_demo")) == 3
    assert len(load(reg, name="book")) == 2
    assert len(load(reg, name="wiki_demo", text_unit="file")) == 1  # the config wins


def test_registry_text_unit_must_fit(tmp_path):
    info = {
        "bad": {"file_name": "wiki.txt", "text_unit": "sentence"},
        "json": {"file_name": "d.json", "text_unit": "line"},
    }
    reg = DatasetRegistry(info, tmp_path / "dataset_info.json")
    with pytest.raises(
        ConfigError, match="entry 'bad': text_unit must be one of paragraph, line, file, got 'sentence'"
    ):
        load(reg, name="bad")
    with pytest.raises(
        ConfigError, match="entry 'json': text_unit splits .txt files, and 'd.json' is not one"
    ):
        load(reg, name="json")
