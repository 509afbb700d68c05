"""Dataset registries: LLaMA-Factory's dataset_info.json read as it is (JSON or YAML), mapped onto
DatasetConfig, with config errors that name the registry file and entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tuneforge.config.schema import DatasetConfig
from tuneforge.data.dataset_registry import DatasetRegistry, resolve_entry
from tuneforge.data.sources import load_dataset
from tuneforge.errors import ConfigError

EXAMPLES = Path(__file__).parents[2] / "examples" / "data"

LF_INFO = {
    "alpaca_en_demo": {"file_name": "alpaca_en_demo.json"},
    "orca": {
        "file_name": "orca.json",
        "columns": {
            "prompt": "question",
            "query": "context",
            "response": "answer",
            "system": "system_prompt",
            "history": "past",
        },
    },
    "glaive_toolcall_en_demo": {
        "file_name": "glaive.json",
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "tools": "tools"},
    },
    "ultrachat_200k": {
        "hf_hub_url": "HuggingFaceH4/ultrachat_200k",
        "ms_hub_url": "AI-ModelScope/ultrachat_200k",
        "split": "train_sft",
        "formatting": "sharegpt",
        "columns": {"messages": "messages"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
        },
    },
    "deepctrl": {"ms_hub_url": "deepctrl/deepctrl-sft-data"},
    "llava_1k_en": {
        "hf_hub_url": "BUAADreamer/llava-en-zh-2k",
        "subset": "en",
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
    },
    "dpo_en_demo": {
        "file_name": "dpo_en_demo.json",
        "ranking": True,
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
    },
    "kto_en_demo": {
        "file_name": "kto.json",
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "kto_tag": "label"},
    },
    "c4_demo": {"file_name": "c4_demo.jsonl", "columns": {"prompt": "text"}},
    "cosmopedia": {
        "hf_hub_url": "HuggingFaceTB/cosmopedia",
        "columns": {"prompt": "prompt", "response": "text"},
        "num_samples": 500,
    },
    "openai_style": {
        "file_name": "chat.jsonl",
        "formatting": "openai",
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
            "system_tag": "system",
        },
    },
    "scripted": {"script_url": "my_script"},
}


@pytest.fixture
def registry(tmp_path) -> DatasetRegistry:
    path = tmp_path / "dataset_info.json"
    path.write_text(json.dumps(LF_INFO, indent=2))
    return DatasetRegistry.from_file(path)


def resolve(registry: DatasetRegistry, name: str, **kw) -> tuple[DatasetConfig, Path | None]:
    return registry.resolve(name, 0, **kw)


def test_alpaca_entries_map_llamafactory_columns(registry, tmp_path):
    spec, base = resolve(registry, "orca")
    assert (spec.path, spec.format, base) == ("orca.json", "alpaca", tmp_path)
    assert spec.columns == {
        "instruction": "question",
        "input": "context",
        "output": "answer",
        "system": "system_prompt",
        "history": "past",
    }
    spec, _ = resolve(registry, "alpaca_en_demo")
    assert (spec.format, spec.columns, spec.tags, spec.split, spec.max_samples) == (
        "alpaca",
        {},
        {},
        "train",
        None,
    )


def test_sharegpt_entries_keep_columns_and_tags(registry):
    spec, _ = resolve(registry, "glaive_toolcall_en_demo")
    assert (spec.format, spec.columns) == ("sharegpt", {"messages": "conversations", "tools": "tools"})
    spec, base = resolve(registry, "ultrachat_200k")
    assert (spec.path, base, spec.split) == ("HuggingFaceH4/ultrachat_200k", None, "train_sft")
    assert spec.tags == LF_INFO["ultrachat_200k"]["tags"]


def test_hub_entries_split_subset_and_num_samples(registry):
    spec, base = resolve(registry, "deepctrl")
    assert (spec.path, base) == ("deepctrl/deepctrl-sft-data", None)
    spec, _ = resolve(registry, "cosmopedia")
    assert (spec.columns, spec.max_samples) == ({"instruction": "prompt", "output": "text"}, 500)


def test_pretraining_reads_the_prompt_column_as_text(registry):
    spec, _ = resolve(registry, "c4_demo", sample_kind="document")
    assert (spec.format, spec.columns) == ("text", {"text": "text"})
    spec, _ = resolve(registry, "cosmopedia", sample_kind="document")
    assert (spec.format, spec.columns) == ("text", {"text": "prompt"})


def test_openai_formatting_with_standard_tags(registry, tmp_path):
    spec, _ = resolve(registry, "openai_style")
    assert (spec.format, spec.tags) == ("openai", {})
    path = tmp_path / "odd.json"
    path.write_text(
        json.dumps({"x": {"file_name": "x.jsonl", "formatting": "openai", "tags": {"user_tag": "human"}}})
    )
    with pytest.raises(ConfigError, match="use formatting: sharegpt with these tags"):
        DatasetRegistry.from_file(path).resolve("x", 0)


def test_user_format_decides_how_columns_are_read(registry):
    spec, _ = resolve(registry, "orca", format="text")
    assert spec.format == "text" and "instruction" not in spec.columns
    reg = DatasetRegistry(
        {"e": {"file_name": "x", "formatting": "sharegpt", "columns": {"prompt": "q"}}}, Path("r.json")
    )
    with pytest.raises(ConfigError, match=r"columns.prompt does not apply to format sharegpt"):
        reg.resolve("e", 0)
    assert reg.resolve("e", 0, format="alpaca")[0].columns == {"instruction": "q"}
    with pytest.raises(
        ConfigError, match=r"data.datasets\[0\].format: unknown format 'alpacca': did you mean 'alpaca'"
    ):
        resolve(registry, "orca", format="alpacca")


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "dpo_en_demo",
            "preference data (ranking, chosen, rejected) needs a preference stage: stage.name: dpo",
        ),
        ("kto_en_demo", "columns.kto_tag: KTO data"),
        ("llava_1k_en", "columns.images: multimodal data (images) is not supported yet"),
        ("scripted", "script_url: dataset loading scripts are not supported"),
    ],
)
def test_unsupported_entries_say_why(registry, name, expected):
    with pytest.raises(ConfigError) as info:
        resolve(registry, name)
    assert f"entry {name!r}" in str(info.value) and expected in str(info.value)
    assert "dataset_info.json" in str(info.value)


def test_chosen_column_without_ranking_is_refused(tmp_path):
    reg = DatasetRegistry(
        {"p": {"file_name": "p.json", "columns": {"prompt": "q", "chosen": "c"}}}, tmp_path / "r.json"
    )
    with pytest.raises(ConfigError, match="columns.chosen: preference data"):
        reg.resolve("p", 0)


def test_unknown_names_and_keys_get_a_did_you_mean(registry):
    with pytest.raises(
        ConfigError,
        match=r"data.datasets\[3\].name: 'glaive_toolcall_en_dem' is not in the dataset registry .*did you mean 'glaive_toolcall_en_demo'",
    ):
        registry.resolve("glaive_toolcall_en_dem", 3)
    reg = DatasetRegistry({"e": {"file_nam": "x.json"}}, Path("reg.json"))
    with pytest.raises(ConfigError, match=r"entry 'e': unknown key 'file_nam': did you mean 'file_name'"):
        reg.resolve("e", 0)


@pytest.mark.parametrize(
    "entry, expected",
    [
        ({"columns": {"prompt": "q"}}, "give file_name"),
        (
            {"file_name": "x", "formatting": "sharegtp"},
            "unknown formatting 'sharegtp': did you mean 'sharegpt'",
        ),
        (
            {"file_name": "x", "columns": {"messages": "m"}},
            "columns.messages does not apply to format alpaca",
        ),
        (
            {"file_name": "x", "tags": {"role_tag": "from"}},
            "tags apply to sharegpt data; format alpaca takes none",
        ),
        (
            {"file_name": "x", "formatting": "sharegpt", "tags": {"rol_tag": "r"}},
            "unknown tag 'rol_tag': did you mean 'role_tag'",
        ),
        ({"file_name": "x", "num_samples": 0}, "num_samples must be a whole number above 0"),
        ({"file_name": "x", "columns": ["prompt"]}, "columns must be a mapping"),
        ("alpaca.json", "expected a mapping"),
    ],
)
def test_bad_entries(entry, expected):
    with pytest.raises(ConfigError, match="reg.json, entry 'e'") as info:
        DatasetRegistry({"e": entry}, Path("reg.json")).resolve("e", 0)
    assert expected in str(info.value)


def test_yaml_registry_with_our_own_names(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text(
        yaml.safe_dump({"chat": {"path": "chat.jsonl", "format": "openai", "columns": {"messages": "turns"}}})
    )
    spec, base = DatasetRegistry.from_file(path).resolve("chat", 0)
    assert (spec.path, spec.format, spec.columns, base) == (
        "chat.jsonl",
        "openai",
        {"messages": "turns"},
        tmp_path,
    )


@pytest.mark.parametrize(
    "name, text, expected",
    [
        (
            "bad.json",
            '{\n  "a": {"file_name": "x"},\n  "b": \n}',
            "bad.json line 4: invalid JSON (Expecting value",
        ),
        ("bad.yaml", "a: [unclosed", "invalid YAML"),
        ("list.json", "[1, 2]", "expected a mapping of dataset names to entries, got a list"),
    ],
)
def test_broken_registry_files(tmp_path, name, text, expected):
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match="dataset registry") as info:
        DatasetRegistry.from_file(tmp_path / name)
    assert expected in str(info.value)


def test_missing_registry_file(tmp_path):
    with pytest.raises(ConfigError, match=r"data.dataset_registry: .*nope.json not found"):
        DatasetRegistry.from_file(tmp_path / "nope.json")


def test_resolve_entry_lets_the_user_win(registry):
    user = DatasetConfig(name="orca", columns={"output": "better_answer"}, split="test", max_samples=7)
    spec, _ = resolve_entry(user, 0, registry)
    assert spec.columns["output"] == "better_answer" and spec.columns["instruction"] == "question"
    assert (spec.path, spec.split, spec.max_samples, spec.name) == ("orca.json", "test", 7, None)
    spec, _ = resolve_entry(DatasetConfig(name="cosmopedia"), 0, registry)
    assert (spec.split, spec.max_samples) == ("train", 500)


def test_the_shipped_example_registry_loads_every_entry():
    registry = DatasetRegistry.from_file(EXAMPLES / "dataset_info.json")
    sizes = {}
    for name in registry.names():
        kind = {"pt_demo": "document", "dpo_demo": "preference", "kto_demo": "unpaired"}.get(
            name, "conversation"
        )
        ds = load_dataset(DatasetConfig(name=name), index=0, registry=registry, sample_kind=kind)
        assert not ds.dropped, (name, ds.dropped)
        sizes[name] = len(ds.samples)
    assert sizes == {"alpaca_demo": 5, "identity": 48, "openai_demo": 3, "pt_demo": 4, "sharegpt_demo": 4,
                     "dpo_demo": 8, "kto_demo": 8}  # fmt: skip
    alpaca = load_dataset(
        DatasetConfig(name="alpaca_demo"), index=0, registry=registry, sample_kind="conversation"
    )
    assert any(
        s.messages[0].role == "system" and len(s.messages) == 5 for s in alpaca.samples
    )  # system + history
    chat = load_dataset(
        DatasetConfig(name="sharegpt_demo"), index=0, registry=registry, sample_kind="conversation"
    )
    assert any(s.tools and any(m.role == "tool" for m in s.messages) for s in chat.samples)
    oa = load_dataset(
        DatasetConfig(name="openai_demo"), index=0, registry=registry, sample_kind="conversation"
    )
    assert any(m.reasoning for s in oa.samples for m in s.messages)
    assert any(m.tool_calls for s in oa.samples for m in s.messages)
