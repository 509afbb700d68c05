"""The contract every registered stage keeps, without training: its module has what the registry needs,
its config is strict and documented, `tuneforge ls stages` lists it, and the docs and README name it.
What each stage trains is checked by the training contract, tests/contract/test_stage_contract.py.

Adding a stage = one file in tuneforge/stages + a row in ROWS here and in test_stage_contract.py + a docs
section.
"""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from tests.helpers.runs import run_cli
from tuneforge.config.load import load_config
from tuneforge.data.kinds import SAMPLE_KINDS
from tuneforge.errors import ConfigError
from tuneforge.stages import STAGES
from tuneforge.stages._config import StageConfig

ROOT = Path(__file__).parents[2]
BASE = {"model": {"name_or_path": "m"}, "data": {"datasets": [{"path": "d.json"}]}}

# stage -> the smallest valid `stage:` section
ROWS = {
    "sft": {},
    "pt": {},
    "rm": {},
    "dpo": {},
    "kto": {},
    "orpo": {},
    "simpo": {},
    "grpo": {"reward_funcs": ["exact_match"]},
    "distill": {"teacher": "t"},
    "ppo": {"reward_funcs": ["exact_match"]},
}
DOCS = ("docs/stages.md", "docs/stages-rl.md")


def test_every_stage_has_a_row():
    assert set(STAGES.names()) - set(ROWS) == set(), "add a row for the new stage to ROWS"
    assert set(ROWS) - set(STAGES.names()) == set(), "a row names a stage that is no longer registered"


@pytest.mark.parametrize("name", sorted(ROWS))
def test_module_shape(name):
    module = STAGES.get(name)
    assert issubclass(module.Config, StageConfig)
    assert typing.get_args(module.Config.model_fields["name"].annotation) == (name,)
    assert isinstance(module.DESCRIPTION, str) and module.DESCRIPTION.endswith(".")
    assert module.SAMPLE_KIND in ("conversation", "document") or module.SAMPLE_KIND in SAMPLE_KINDS
    assert callable(module.build_trainer)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_config_is_strict_and_documented(name):
    fields = ROWS[name]
    cfg = load_config(None, [], data={**BASE, "stage": {"name": name, **fields}})
    assert cfg.stage.name == name
    for field, info in type(cfg.stage).model_fields.items():
        assert field == "name" or info.description, f"stage {name}: {field} has no description"
    with pytest.raises(ConfigError, match="stage"):
        load_config(None, [], data={**BASE, "stage": {"name": name, **fields, "no_such_key": 1}})


@pytest.mark.parametrize("name", sorted(ROWS))
def test_listed_and_documented(name, capsys):
    code, out, _ = run_cli(capsys, "ls", "stages")
    assert code == 0 and any(line.split()[:1] == [name] for line in out.splitlines())
    docs = "\n".join((ROOT / doc).read_text() for doc in DOCS)
    assert f"| `{name}` |" in docs or f"## `{name}`" in docs or f"## {name}\n" in docs, f"document {name}"
    stage_line = next(
        line for line in (ROOT / "README.md").read_text().splitlines() if "# train: stages" in line
    )
    assert name in stage_line.replace(",", " ").split(), "add the stage to README's `# train: stages` line"
