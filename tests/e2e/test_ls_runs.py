"""`tuneforge ls runs --dir DIR` (`tuneforge.runs.listing`): every run folder under DIR with its state
(running while its lock names a live process, finished, stopped), stage, method, step and last loss;
a stopped run resumes from its own config.yaml as the listing says."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from tests.helpers.runs import Crash, make_config, run_cli, sft_crashing_at, write_alpaca
from tuneforge.runs.listing import list_runs


def _cfg(tmp_path, model_dir, name):
    cfg = make_config(tmp_path / "runs" / name, model_dir, write_alpaca(tmp_path / "d.json"))
    cfg["output"]["dir"] = str(tmp_path / "runs" / name)
    cfg["train"].update(max_steps=4, save_steps=2)
    return cfg


def test_finished_stopped_and_running_runs(tmp_path, tiny_llama_dir, monkeypatch, capsys):
    from tuneforge.config.load import load_config
    from tuneforge.train import run_training

    run_training(load_config(None, data=_cfg(tmp_path, tiny_llama_dir, "done")))

    with sft_crashing_at(monkeypatch, 3), pytest.raises(Crash):
        run_training(load_config(None, data=_cfg(tmp_path, tiny_llama_dir, "crashed")))

    live = tmp_path / "runs" / "live"
    live.mkdir()
    (live / ".tuneforge-run").write_text("")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (live / ".lock").write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname()}))
        runs = {r.path.name: r for r in list_runs(tmp_path / "runs")}
        code, out, err = run_cli(capsys, "ls", "runs", "--dir", str(tmp_path / "runs"))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert runs["done"].state == "finished" and runs["done"].step == 4 and runs["done"].last_loss > 0
    assert (runs["done"].stage, runs["done"].method) == ("sft", "lora")
    assert (
        runs["crashed"].state == "stopped" and runs["crashed"].step == 2 and runs["crashed"].checkpoints == 1
    )
    assert runs["live"].state == "running"
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert "finished" in lines["done"] and "4/4" in lines["done"]
    assert "stopped (1 checkpoints)" in lines["crashed"] and "running" in lines["live"]
    assert "train.resume_from_checkpoint=auto" in out
    assert list_runs(tmp_path / "runs")[0].path.name in {"live", "crashed", "done"}

    # the hint's command resumes the stopped run from its own config.yaml
    crashed = tmp_path / "runs" / "crashed"
    code, _, err = run_cli(capsys, "train", str(crashed / "config.yaml"), "train.resume_from_checkpoint=auto")
    assert code == 0, err
    again = {r.path.name: r for r in list_runs(tmp_path / "runs")}["crashed"]
    assert again.state == "finished" and again.step == 4


def test_bad_arguments_are_one_line(tmp_path, capsys):
    code, _, err = run_cli(capsys, "ls", "runs", "--dir", str(tmp_path / "nowhere"))
    assert code == 2 and "is not a folder" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "ls", "methods", "--dir", str(tmp_path))
    assert code == 2 and "--dir only applies to 'ls runs'" in err
    code, out, _ = run_cli(capsys, "ls", "runs", "--dir", str(tmp_path))
    assert code == 0 and "no run folders under" in out
