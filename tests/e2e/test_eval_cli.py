"""`tuneforge eval` through the CLI: a trained run is evaluated before and after with its saved
template; a plain model folder once; reports (JSON, Markdown, PNG) are written; bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.helpers.runs import make_config, run_cli, write_alpaca, write_config

FIX = Path(__file__).parents[1] / "fixtures" / "eval"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_llama_dir):
    import pytest as _pytest

    tmp = tmp_path_factory.mktemp("eval-run")
    cfg = make_config(tmp, tiny_llama_dir, write_alpaca(tmp / "d.json"))
    mp = _pytest.MonkeyPatch()
    mp.setenv("TUNEFORGE_CACHE", str(tmp / "cache"))
    from tuneforge.cli import main

    try:
        main(["train", str(write_config(tmp, cfg))])
    except SystemExit as e:
        assert not e.code
    finally:
        mp.undo()
    return tmp / "run"


def _tasks_file(tmp_path: Path, data: Path) -> Path:
    tasks = [
        {
            "name": "generate",
            "label": "arith",
            "path": str(FIX / "arith.jsonl"),
            "metrics": ["exact_match", "rouge"],
            "max_new_tokens": 4,
        },
        {"name": "choice", "label": "quiz", "path": str(FIX / "mmlu_sample.jsonl"), "num_fewshot": 1},
        {"name": "perplexity", "path": str(data)},
    ]
    path = tmp_path / "tasks.yaml"
    path.write_text(yaml.safe_dump({"tasks": tasks}))
    return path


def test_eval_run_before_and_after(trained_run, tmp_path, capsys):
    out = tmp_path / "report"
    data = trained_run.parent / "d.json"
    code, stdout, err = run_cli(
        capsys, "eval", str(trained_run), "--tasks", str(_tasks_file(tmp_path, data)), "--out", str(out)
    )
    assert code == 0, err[-2000:]
    summary = json.loads((out / "eval.json").read_text())
    assert summary["sides"] == ["before", "after"] and summary["run"] is True
    for key in ("arith", "quiz", "perplexity"):
        assert set(summary["tasks"][key]["sides"]) == {"before", "after"}
    ppl = summary["tasks"]["perplexity"]["sides"]
    # the run trained on this very data with a high learning rate: its loss on it went down
    assert ppl["after"]["metrics"]["loss"] < ppl["before"]["metrics"]["loss"]
    assert summary["tasks"]["quiz"]["sides"]["after"]["subjects"].keys() == {"anatomy", "astronomy"}
    md = (out / "eval.md").read_text()
    assert "| task | metric | before | after | change |" in md and "## quiz: accuracy per subject" in md
    assert (out / "eval_tasks.png").stat().st_size > 0 and (out / "eval_subjects.png").stat().st_size > 0
    assert "| arith | exact_match |" in stdout


def test_eval_plain_model_with_builtin_mmlu(tiny_llama_dir, tmp_path, capsys, monkeypatch):
    import tuneforge.eval.benchmarks as bench

    monkeypatch.setattr(bench, "mmlu_path", lambda: FIX / "mmlu_sample.jsonl")
    out = tmp_path / "r"
    code, _, err = run_cli(
        capsys,
        "eval",
        str(tiny_llama_dir),
        "--tasks",
        "mmlu",
        "--subjects",
        "anatomy",
        "--limit",
        "2",
        "--out",
        str(out),
    )
    assert code == 0, err[-2000:]
    summary = json.loads((out / "eval.json").read_text())
    assert summary["sides"] == ["model"]
    assert summary["tasks"]["mmlu"]["sides"]["model"]["counts"]["questions"] == 2


def test_eval_bad_input_is_one_line(tiny_llama_dir, tmp_path, capsys):
    code, _, err = run_cli(capsys, "eval", str(tiny_llama_dir), "--tasks", "mmlu2")
    assert (
        code == 2
        and err.startswith("error: ")
        and "did you mean 'mmlu'" in err
        and len(err.strip().splitlines()) == 1
    )
    bad = tmp_path / "t.yaml"
    bad.write_text(yaml.safe_dump({"tasks": [{"name": "generate", "path": str(tmp_path / "missing.jsonl")}]}))
    code, _, err = run_cli(
        capsys, "eval", str(tiny_llama_dir), "--tasks", str(bad), "--out", str(tmp_path / "o")
    )
    assert code == 2 and "missing.jsonl does not exist" in err
