"""What a newcomer sees when `tuneforge train` runs (issue 23): tuneforge's own lines and the training
progress bar, nothing else (other libraries' notices are in RUN/log.txt); and the `threads:` line
tells the CPU thread count the run really used."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import torch

from tests.helpers.runs import make_config, run_cli, write_alpaca, write_config
from tuneforge import threads

ROOT = Path(__file__).resolve().parents[2]

# the first words of every line tuneforge itself prints during a small LoRA run
OWN = ("threads: ", "data: ", "trainable params: ", "speed: ", "run saved in ", "chat with it: ")
# the Trainer's progress: its bar (redrawn with carriage returns) and the dicts it writes above it
PROGRESS = re.compile(r"^\s*(\d+%\|.*\| *\d+/\d+ \[.*\]|\{'(loss|train_runtime)': .*\})?\s*$")


def _others(output: str) -> list[str]:
    pieces = re.split(r"[\r\n]", output)
    return [p for p in pieces if not p.startswith(OWN) and not PROGRESS.match(p)]


def test_a_tiny_training_prints_only_tuneforge_lines_and_the_progress_bar(tmp_path, tiny_llama_dir):
    cfg = make_config(tmp_path, tiny_llama_dir, write_alpaca(tmp_path / "d.json"))
    env = {  # a user's shell: none of the test session's settings
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "TUNEFORGE_CACHE": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "tuneforge", "train", str(write_config(tmp_path, cfg))],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _others(proc.stdout + "\n" + proc.stderr) == []
    assert "it/s]" in proc.stderr or "s/it]" in proc.stderr  # the training progress bar stays
    run = tmp_path / "run"
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("threads: ")]
    chosen = int(line.split()[1])
    assert json.loads((run / "manifest.json").read_text())["cpu_threads"] == chosen
    assert 1 <= chosen <= threads.usable_cores()
    log = (run / "log.txt").read_text()
    assert "trainable params: " in log and "tuneforge train" in log.splitlines()[0]


def test_train_uses_the_threads_other_processes_leave_free(tmp_path, tiny_llama_dir, monkeypatch, capsys):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: None)
    monkeypatch.setattr(threads, "busy_cores", lambda: 1.0)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv(threads.PARENT_ENV, raising=False)
    before = torch.get_num_threads()
    cfg = make_config(tmp_path, tiny_llama_dir, write_alpaca(tmp_path / "d.json"))
    cfg["train"].update(max_steps=2, save_steps=100)
    code, out, err = run_cli(capsys, "train", str(write_config(tmp_path, cfg)))
    assert code == 0, err[-3000:]
    assert "threads: 1 of 2 cores (another process is busy on 1); set train.num_threads to choose\n" in err
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["cpu_threads"] == 1
    assert torch.get_num_threads() == before  # main inside this program gives its count back
