"""`speed.huge_pages`: big CPU tensors in transparent huge pages, turned on when `tuneforge train`
starts. A run with them (and so with `speed.keep_freed_memory`, auto with them) gives the same
losses as a run without; where PyTorch has already allocated
(this test session) they cannot be turned on, and auto says so while true refuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.runs import make_config, write_alpaca, write_config
from tuneforge.errors import ConfigError
from tuneforge.speed import huge_pages

ROOT = Path(__file__).resolve().parents[2]
OFFERED = huge_pages.kernel_mode() in ("always", "madvise")


def test_kernel_mode_is_read_from_sysfs(tmp_path, monkeypatch):
    mode = tmp_path / "enabled"
    monkeypatch.setattr(huge_pages, "THP_MODE", mode)
    assert huge_pages.kernel_mode() is None  # no such file: not Linux, or no THP
    mode.write_text("always [madvise] never\n")
    assert huge_pages.kernel_mode() == "madvise"
    mode.write_text("always madvise [never]\n")
    assert huge_pages.kernel_mode() == "never"
    assert huge_pages.check_huge_pages(None) == (
        False,
        "huge pages off: the kernel's transparent huge page mode is never",
    )
    with pytest.raises(ConfigError, match="offers no transparent huge pages"):
        huge_pages.check_huge_pages(True)
    monkeypatch.delenv(huge_pages.ENV, raising=False)
    assert huge_pages.check_huge_pages(False) == (False, "")


@pytest.mark.skipif(not OFFERED, reason="the kernel offers no transparent huge pages")
def test_too_late_in_a_process_that_allocated(monkeypatch):
    import torch

    torch.ones(1 << 20)  # this process has allocated: PyTorch has read its setting already
    if huge_pages.in_effect():
        pytest.skip(f"{huge_pages.ENV}=1 was set before this test session started")
    monkeypatch.delenv(huge_pages.ENV, raising=False)
    on, why = huge_pages.check_huge_pages(None)
    assert not on and "this process did not start so" in why
    with pytest.raises(ConfigError, match="THP_MEM_ALLOC_ENABLE=1"):
        huge_pages.check_huge_pages(True)


def _train(tmp_path: Path, model_dir: Path, name: str, **train) -> tuple[list[float], str]:
    cfg = make_config(tmp_path, model_dir, write_alpaca(tmp_path / "d.json"), train=train)
    cfg["output"]["dir"] = str(tmp_path / name)
    cfg["train"].update(max_steps=3, save_steps=100)
    env = {k: v for k, v in os.environ.items() if k != huge_pages.ENV}
    proc = subprocess.run(
        [sys.executable, "-m", "tuneforge", "train", str(write_config(tmp_path, cfg, f"{name}.yaml"))],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads((tmp_path / name / "checkpoint-3" / "trainer_state.json").read_text())
    return [e["loss"] for e in state["log_history"] if "loss" in e], proc.stdout + proc.stderr


@pytest.mark.skipif(not OFFERED, reason="the kernel offers no transparent huge pages")
def test_tuneforge_train_turns_them_on_and_the_losses_stay(tmp_path, tiny_llama_dir):
    on_losses, on_log = _train(tmp_path, tiny_llama_dir, "on")
    off_losses, off_log = _train(tmp_path, tiny_llama_dir, "off", huge_pages=False)
    assert "huge_pages=True" in on_log and "huge_pages=False" in off_log
    # keep_freed_memory is auto with huge pages: the same losses cover it being on and off
    assert "freed_memory=keep" in on_log and "freed_memory=glibc default" in off_log
    assert on_losses == pytest.approx(off_losses, rel=1e-6)


def test_process_start_reads_the_config_and_overrides(tmp_path, monkeypatch):
    from tuneforge.commands.train import start_process

    mode = tmp_path / "enabled"
    mode.write_text("always [madvise] never\n")
    monkeypatch.setattr(huge_pages, "THP_MODE", mode)
    monkeypatch.setattr("tuneforge.speed.host_memory.apply_at_process_start", lambda speed: None)
    off = tmp_path / "off.yaml"
    off.write_text("train:\n  huge_pages: false\n")  # the old key still counts
    new_off = tmp_path / "new_off.yaml"
    new_off.write_text("speed:\n  huge_pages: false\n")
    plain = tmp_path / "plain.yaml"
    plain.write_text("train:\n  max_steps: 3\n")
    cases = [
        ([str(plain)], "1"),
        ([str(off)], None),
        ([str(new_off)], None),
        ([str(new_off), "speed.huge_pages=true"], "1"),
        ([str(off), "speed.huge_pages=true"], None),  # old and new name both set: the run refuses it
        ([str(plain), "speed.huge_pages=false"], None),
        ([str(tmp_path / "missing.yaml")], None),  # loading the config reports it
    ]
    for argv, expected in cases:
        monkeypatch.delenv(huge_pages.ENV, raising=False)
        start_process(argv)
        assert os.environ.get(huge_pages.ENV) == expected, argv
    monkeypatch.delenv(huge_pages.ENV, raising=False)
    start_process([str(plain)], fresh_process=False)  # inside another program: too late, left alone
    assert huge_pages.ENV not in os.environ
    monkeypatch.setenv(huge_pages.ENV, "0")  # the user's own setting stays
    start_process([str(plain)])
    assert os.environ[huge_pages.ENV] == "0"
    mode.write_text("always madvise [never]\n")
    monkeypatch.delenv(huge_pages.ENV)
    start_process([str(plain)])
    assert huge_pages.ENV not in os.environ


def test_the_train_start_up_step_runs_for_train_only(monkeypatch, capsys):
    import tuneforge.commands.train as train_verb
    from tuneforge.cli import main

    calls = []
    monkeypatch.setattr(train_verb, "start_process", lambda argv, fresh_process=True: calls.append(argv))
    with pytest.raises(SystemExit):
        main(["ls", "stages"])
    assert calls == []
    with pytest.raises(SystemExit):
        main(["train", "missing.yaml", "train.seed=1"])
    assert calls == [["missing.yaml", "train.seed=1"]]
