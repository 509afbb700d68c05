"""The New-run form (`tuneforge.ui.form`): built from the schema, back to a raw config that validates
to the same Config, and validation messages put by the input they are about."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tuneforge.config.load import validate
from tuneforge.config.train import TrainConfig
from tuneforge.ui.form import FormField, form_sections, form_values, raw_from_form
from tuneforge.ui.form_errors import apply_errors, errors_by_field

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = {"model": {"name_or_path": "m"}, "data": {"datasets": [{"path": "x.json"}]}}


def _train_configs() -> list[Path]:
    out = []
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        if isinstance(raw, dict) and "model" in raw and "data" in raw:
            out.append(path)
    return out


def _fields(raw: dict) -> dict[str, FormField]:
    return {f.key: f for section in form_sections(raw) for f in section.fields}


def _round_trip(raw: dict) -> dict:
    return raw_from_form(form_values(form_sections(raw)))


def test_examples_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in _train_configs()}
    assert "examples/quickstart/identity.yaml" in names
    assert len([n for n in names if n.startswith("examples/configs/")]) > 20


@pytest.mark.parametrize("path", _train_configs(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_round_trip_over_example_configs(path):
    raw = yaml.safe_load(path.read_text())
    assert validate(_round_trip(raw), "form").model_dump() == validate(raw, "file").model_dump()


@pytest.mark.parametrize(
    "extra",
    [
        {"data": {"default_system": ""}},  # '' (no system prompt) is not None (the template's own)
        {"train": {"save_total_limit": None}},  # None where the default is 2
        {"train": {"report_to": []}},  # empty where the default is not
        {"train": {"gradient_checkpointing_kwargs": {"use_reentrant": False}}},
        {"speed": {"padding_free": False, "huge_pages": True}},
        {"method": {"name": "freeze", "trainable_layer_range": [1, 3]}},
        {"method": {"name": "qlora", "bits": 8}},  # an int Literal
        {"method": {"name": "lora", "init_lora_weights": "gaussian"}},  # bool | str
        {"method": {"name": "dora"}},  # use_dora: Literal[True]
        {"stage": {"name": "dpo", "loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 0.5]}},
        {"eval": {"tasks": [{"name": "generate", "path": "t.jsonl", "label": "arith"}]}},
    ],
)
def test_round_trip_of_values_that_text_could_lose(extra):
    raw = {**MINIMAL, **extra}
    raw["data"] = {**MINIMAL["data"], **extra.get("data", {})}
    assert validate(_round_trip(raw), "form").model_dump() == validate(raw, "file").model_dump()


def test_renamed_keys_land_in_their_new_field():
    raw = {**MINIMAL, "train": {"packing": True}}  # no config_version: the old layout
    assert _fields(raw)["speed.packing"].value == "true"
    assert validate(_round_trip(raw), "form").speed.packing is True


def test_sections_follow_the_schema():
    sections = form_sections(MINIMAL)
    assert [s.name for s in sections] == [
        "model",
        "data",
        "method",
        "stage",
        "train",
        "speed",
        "scale",
        "output",
        "compare",
        "eval",
    ]
    fields = _fields(MINIMAL)
    lr = fields["train.learning_rate"]
    assert (lr.kind, lr.label, lr.value, lr.default) == ("float", "learning_rate", "0.0001", "0.0001")
    assert lr.help == TrainConfig.model_fields["learning_rate"].description
    assert {"lora", "dora", "full"} <= set(fields["method.name"].choices)
    assert fields["method.name"].kind == "choice" and fields["method.name"].value == "lora"
    assert fields["stage.name"].value == "sft" and "dpo" in fields["stage.name"].choices
    datasets = fields["data.datasets"]
    assert (
        datasets.kind == "yaml"
        and datasets.required
        and yaml.safe_load(datasets.value) == [{"path": "x.json"}]
    )
    assert fields["model.name_or_path"].required and fields["model.name_or_path"].value == "m"
    assert fields["model.dtype"].kind == "choice" and fields["model.dtype"].choices[0] == "auto"
    assert fields["train.greater_is_better"].choices == ["", "true", "false"]
    assert fields["train.bf16"].choices == ["true", "false"] and fields["train.bf16"].value == "false"
    assert fields["eval.tasks"].kind == "yaml" and fields["eval.tasks"].value == ""
    assert "config_version" not in fields and "method.config_version" not in fields
    assert not any(
        k.endswith(".name") and k.count(".") == 1 for k in fields if k not in ("method.name", "stage.name")
    )


def test_only_the_selected_method_and_stage_fields_are_shown():
    lora = _fields(MINIMAL)
    dora = _fields({**MINIMAL, "method": {"name": "dora"}})
    # dora has lora's field names, but use_dora is fixed to true there
    assert lora["method.use_dora"].kind == "bool"
    assert dora["method.use_dora"].kind == "choice" and dora["method.use_dora"].choices == ["true"]
    assert "method.loraplus_lr_ratio" not in lora
    assert "method.loraplus_lr_ratio" in _fields({**MINIMAL, "method": {"name": "loraplus"}})
    galore = _fields({**MINIMAL, "method": {"name": "galore"}})
    assert "method.rank" in galore and "method.r" not in galore and "method.rank" not in lora
    assert not [k for k in _fields({**MINIMAL, "method": {"name": "full"}}) if k.startswith("method.")][1:]
    dpo = _fields({**MINIMAL, "stage": {"name": "dpo", "beta": 0.3}})
    assert dpo["stage.beta"].value == "0.3" and "stage.beta" not in lora


def test_a_form_of_defaults_gives_only_required_keys_and_names():
    assert raw_from_form(form_values(form_sections(MINIMAL))) == {
        **MINIMAL,
        "method": {"name": "lora"},
        "stage": {"name": "sft"},
    }
    # required keys left empty are left out, their sections kept so that validation names them
    assert raw_from_form(form_values(form_sections({}))) == {
        "model": {},
        "data": {},
        "method": {"name": "lora"},
        "stage": {"name": "sft"},
    }


def test_changed_values_are_parsed_by_kind():
    form = form_values(form_sections(MINIMAL))
    form.update({"train.learning_rate": "3e-5", "train.bf16": "true", "data.max_length": "512"})
    form.update({"model.dtype": "bfloat16", "train.report_to": "[none]", "train.save_total_limit": ""})
    raw = raw_from_form(form)
    assert raw["train"]["learning_rate"] == 3e-5 and isinstance(raw["train"]["learning_rate"], float)
    assert raw["train"]["bf16"] is True and raw["data"]["max_length"] == 512
    assert raw["model"]["dtype"] == "bfloat16" and raw["train"]["report_to"] == ["none"]
    assert raw["train"]["save_total_limit"] is None


def test_text_that_does_not_parse_is_kept_for_validation():
    form = {"train.learning_rate": "abc", "data.max_length": "1.5", "data.datasets": "[unclosed", "x.y": "1"}
    raw = raw_from_form(form)
    assert raw["train"]["learning_rate"] == "abc"
    assert raw["data"]["max_length"] == 1.5  # a number, so validation says it is not an integer
    assert raw["data"]["datasets"] == "[unclosed"
    assert raw["x"] == {"y": 1}


def _errors(**form: str) -> tuple[dict[str, str], list[str]]:
    values = form_values(form_sections(MINIMAL))
    values.update(form)
    config, by_field, general = errors_by_field(raw_from_form(values))
    assert config is None
    return by_field, general


def test_valid_form_gives_the_config():
    config, by_field, general = errors_by_field(raw_from_form(form_values(form_sections(MINIMAL))))
    assert config is not None and config.model.name_or_path == "m"
    assert (by_field, general) == ({}, [])


def test_a_bad_number_is_put_by_its_input():
    by_field, general = _errors(**{"train.learning_rate": "abc"})
    assert list(by_field) == ["train.learning_rate"] and not general
    assert "train.learning_rate" in by_field["train.learning_rate"]
    assert "abc" in by_field["train.learning_rate"]


def test_a_value_out_of_range_is_put_by_its_input():
    by_field, _ = _errors(**{"train.learning_rate": "-1"})
    assert "greater than 0" in by_field["train.learning_rate"]


def test_a_missing_required_key():
    by_field, _ = _errors(**{"model.name_or_path": ""})
    assert by_field == {"model.name_or_path": "model.name_or_path is required"}
    _, by_field, _ = errors_by_field({"data": MINIMAL["data"]})
    assert by_field == {"model.name_or_path": "model.name_or_path is required"}


def test_an_unknown_key_goes_to_the_general_list():
    by_field, general = _errors(**{"train.learning_rat": "0.1"})
    assert not by_field
    assert len(general) == 1 and "did you mean train.learning_rate" in general[0]


def test_a_bad_list_item_is_put_by_the_list():
    by_field, general = errors_by_field({**MINIMAL, "data": {"datasets": [{"pathh": "x"}]}})[1:]
    assert list(by_field) == ["data.datasets"] and not general
    assert "data.datasets.0.pathh" in by_field["data.datasets"]
    by_field, _ = errors_by_field({**MINIMAL, "eval": {"tasks": [{"name": "generate"}]}})[1:]
    assert list(by_field) == ["eval.tasks"]


def test_an_unknown_method_is_put_by_method_name():
    by_field, _ = _errors(**{"method.name": "lorra"})
    assert list(by_field) == ["method.name"] and "did you mean 'lora'" in by_field["method.name"]
    by_field, _ = _errors(**{"method.r": "0"})
    assert list(by_field) == ["method.r"]


def test_errors_from_renamed_keys_go_to_the_general_list():
    raw = {**MINIMAL, "train": {"packing": True}, "speed": {"packing": False}}
    config, by_field, general = errors_by_field(raw)
    assert config is None and not by_field
    assert (
        len(general) == 1 and "keep only speed.packing" in general[0] and not general[0].startswith("form:")
    )


def test_apply_errors_marks_the_fields():
    sections = form_sections(MINIMAL)
    by_field, _ = _errors(**{"train.learning_rate": "abc"})
    apply_errors(sections, by_field)
    marked = {f.key: f.error for s in sections for f in s.fields if f.error}
    assert list(marked) == ["train.learning_rate"]
    apply_errors(sections, {})
    assert not [f for s in sections for f in s.fields if f.error]


def _choices(section: str) -> list[str]:
    return _fields(MINIMAL)[f"{section}.name"].choices


@pytest.mark.parametrize("section", ["method", "stage"])
def test_every_choice_shown_with_its_defaults_writes_only_its_name(section):
    for name in _choices(section):
        raw = _round_trip({**MINIMAL, section: {"name": name}})
        assert raw[section] == {"name": name}, name  # no default survives the text round trip
        assert set(raw) == {"model", "data", "method", "stage"}, name
