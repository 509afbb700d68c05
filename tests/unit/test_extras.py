"""The base install is what training needs; a feature whose extra is missing says which to install,
in one line (`tuneforge.extras`), and the extras in pyproject.toml are the ones named."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest
import tomllib

from tests.helpers.runs import run_cli
from tuneforge.errors import ConfigError
from tuneforge.extras import EXTRA_OF

PYPROJECT = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    for sep in "<>=[ ":
        requirement = requirement.split(sep)[0]
    return requirement.replace("-", "_").lower()


def test_each_module_is_in_the_extra_it_names_and_not_in_the_base():
    base = {_name(r) for r in PYPROJECT["dependencies"]}
    extras = PYPROJECT["optional-dependencies"]
    for module, extra in EXTRA_OF.items():
        assert module in {_name(r) for r in extras[extra]}, (module, extra)
        assert module not in base, module
    assert {"torch", "transformers", "peft", "trl", "datasets", "accelerate"} <= base


def test_the_serve_extra_installs_the_client_the_docs_use():
    extras = PYPROJECT["optional-dependencies"]
    assert "openai" in {_name(r) for r in extras["serve"]}  # docs/serve.md, examples/serve/client.py
    own = next(r for r in extras["test"] if r.startswith("tuneforge["))
    assert {"serve", "ui", "generate"} <= set(own[len("tuneforge[") : -1].split(","))  # the tests' client too


def test_ui_says_which_extra(without, capsys):
    without("jinja2")
    code, _, err = run_cli(capsys, "ui", "--no-browser")
    assert code == 2 and err.count("\n") == 1
    assert "tuneforge ui needs jinja2" in err and "pip install 'tuneforge[ui]'" in err


@pytest.fixture
def without(monkeypatch):
    real = importlib.util.find_spec

    def hide(*modules):
        monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n in modules else real(n, *a))

    return hide


def test_serve_says_which_extra(without, capsys, tmp_path):
    without("uvicorn")
    code, _, err = run_cli(capsys, "serve", str(tmp_path))
    assert code == 2 and err.count("\n") == 1
    assert "tuneforge serve needs uvicorn" in err and "pip install 'tuneforge[serve]'" in err


def test_metrics_and_optimiser_methods_say_which_extra(without):
    from tuneforge.eval.metrics import bleu
    from tuneforge.methods import METHODS

    without("sacrebleu", "galore_torch", "badam")
    with pytest.raises(ConfigError, match=r"the bleu metric needs sacrebleu.*tuneforge\[eval\]"):
        bleu(["a"], ["a"])
    galore = METHODS.get("galore")
    with pytest.raises(ConfigError, match=r"method 'galore' needs galore_torch.*tuneforge\[optim\]"):
        galore.training_arguments(galore.Config())
    badam = METHODS.get("badam")
    with pytest.raises(ConfigError, match=r"tuneforge\[optim\]"):
        badam.apply(None, badam.Config())


def test_a_default_plot_is_skipped_with_one_line(without, tmp_path, caplog):
    from tuneforge.eval.plots import plot_loss

    without("matplotlib")
    with caplog.at_level(logging.WARNING, logger="tuneforge"):
        assert plot_loss([{"loss": 1.0, "step": 1}], tmp_path / "loss.png") is None
    assert "loss.png skipped" in caplog.text and "tuneforge[eval]" in caplog.text
    assert not (tmp_path / "loss.png").exists()
