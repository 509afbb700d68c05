"""Config loading: overrides, unknown keys with did-you-mean, wrong types, every example parses."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tuneforge.config.load import load_config
from tuneforge.config.raw import parse_override
from tuneforge.config.reference import reference_text
from tuneforge.errors import ConfigError

EXAMPLES_DIR = Path(__file__).parents[2] / "examples"


def _rel(path: Path) -> str:
    return path.relative_to(EXAMPLES_DIR).as_posix()


BASE = {
    "model": {"name_or_path": "some/model"},
    "data": {"datasets": [{"path": "train.json"}]},
    "method": {"name": "lora"},
}
# every YAML under examples/ is a config, except these (examples/-relative) -> the bench config a
# settings file's candidates merge over, or None where another test checks the file
NOT_CONFIGS = {
    # candidate name -> partial config, for `tuneforge bench methods --settings` (test_bench_settings)
    "bench/settings.yaml": "bench/arithmetic.yaml",
    # a `tuneforge eval --tasks` file (tests/unit/test_eval_tasks.py: test_example_task_files_parse)
    "eval/arithmetic_tasks.yaml": None,
    "quickstart/identity_tasks.yaml": None,
    # `tuneforge data generate` recipes (tests/unit/test_generate_config.py parses them)
    "generate/respond_smollm2.yaml": None,
    "generate/topics_endpoint.yaml": None,
    # `tuneforge goal` files and the goal's recipe (tests/unit/test_generate_config.py parses them)
    "goal/units.yaml": None,
    "goal/extract.yaml": None,
    "goal/extract_recipe.yaml": None,
}
EXAMPLES = sorted(p for p in EXAMPLES_DIR.rglob("*.yaml") if _rel(p) not in NOT_CONFIGS)


def load(*overrides: str, data: dict | None = None):
    return load_config(None, list(overrides), data=copy.deepcopy(data or BASE))


def test_overrides_parse_yaml_values():
    cfg = load(
        "train.learning_rate=3e-4", "data.datasets.0.weight=2", "train.report_to=[none]", "method.r=16"
    )
    assert cfg.train.learning_rate == 3e-4
    assert cfg.data.datasets[0].weight == 2.0
    assert cfg.train.report_to == ["none"]
    assert cfg.method.r == 16


def test_override_switches_method_and_stage():
    cfg = load("method.name=full", "stage.name=pt")
    assert cfg.method.name == "full" and cfg.stage.name == "pt"


@pytest.mark.parametrize(
    "override, expected",
    [
        ("train.learnig_rate=1", "unknown key train.learnig_rate: did you mean train.learning_rate?"),
        ("modle.name_or_path=x", "unknown key modle: did you mean model?"),
        ("data.datasets.0.pth=x", "did you mean data.datasets.0.path?"),
        ("method.rank=8", "unknown key method.rank"),
        ("method.name=lorra", "unknown method 'lorra': did you mean 'lora'"),
        ("stage.name=sfft", "unknown stage 'sfft': did you mean 'sft'"),
        ("train.learning_rate=abc", "train.learning_rate = 'abc'"),
        ("train.per_device_train_batch_size=0", "train.per_device_train_batch_size = 0"),
        ("data.datasets.3.path=x", "data.datasets.3: use a list index between 0 and 0"),
        ("learning_rate", "is not key=value"),
    ],
)
def test_bad_config_names_the_key(override, expected):
    with pytest.raises(ConfigError) as err:
        load(override)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_required_key():
    with pytest.raises(ConfigError, match="model is required"):
        load(data={"data": {"datasets": [{"path": "x"}]}})


def test_yaml_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  name_or_path: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml line \d+: invalid YAML"):
        load_config(bad)


def test_parse_override_keeps_strings():
    assert parse_override("model.name_or_path=a/b") == (["model", "name_or_path"], "a/b")
    assert parse_override("data.template=") == (["data", "template"], "")


def test_reference_lists_fields_with_descriptions():
    text = reference_text()
    assert "| `train.learning_rate` | float | 0.0001 | Peak learning rate. |" in text
    assert "`method.r`" in text and "[lora]" in text
    assert "`data.datasets[i].columns`" in text


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_config_parses(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# tuneforge "), f"{path} must start with the command that runs it"
    assert f"examples/{_rel(path)}" in first.split(), f"{path}: its first line must run this file"
    load_config(path)


def test_every_yaml_under_examples_is_checked():
    """The parsed set is the real set: every YAML under examples/ is a config parsed above or a listed
    non-config (a new kind of file fails here until it is listed with the test that checks it), and the
    examples/configs the e2e test trains (tests/e2e/test_examples_run.py) are among the parsed ones."""
    found = {_rel(p) for p in EXAMPLES_DIR.rglob("*.yaml")}
    assert set(NOT_CONFIGS) <= found, f"listed but gone: {sorted(set(NOT_CONFIGS) - found)}"
    assert {_rel(p) for p in EXAMPLES} == found - set(NOT_CONFIGS)
    configs = {f"configs/{p.name}" for p in (EXAMPLES_DIR / "configs").glob("*.yaml")}
    assert configs and configs <= {_rel(p) for p in EXAMPLES}
    tasks = {name for name in NOT_CONFIGS if name.endswith("_tasks.yaml")}  # test_eval_tasks' glob
    assert tasks == {_rel(p) for p in EXAMPLES_DIR.rglob("*_tasks.yaml")}


def test_every_stage_has_an_example_config():
    from tuneforge.stages import STAGES

    shown = {load_config(p).stage.name for p in (EXAMPLES_DIR / "configs").glob("*.yaml")}
    assert set(STAGES.names()) - shown == set(), "add an example config to examples/configs for each stage"


def test_bench_settings():
    """Each candidate of a settings file, merged over its bench config the way `tuneforge bench methods`
    merges it, is a valid config that sets what the file says."""
    from tuneforge.runs.bench import bench_candidates, read_settings

    for name, config in NOT_CONFIGS.items():
        if config is None:
            continue
        settings = read_settings(EXAMPLES_DIR / name)
        assert settings
        for candidate in bench_candidates(EXAMPLES_DIR / config, list(settings), settings, steps=8):
            cfg = load_config(candidate.config, list(candidate.overrides))
            assert cfg.method.name == candidate.name and cfg.train.max_steps == 8
            for section, values in settings[candidate.name].items():
                for key, value in values.items():
                    assert getattr(getattr(cfg, section), key) == value, (name, candidate.name, section, key)
