"""The CPU thread count a command chooses at its start (tuneforge.threads): the cores other
processes leave free, from a sample of /proc/stat, never below 1; train.num_threads, then the
user's OMP_NUM_THREADS, then a sweep's choice for its candidates win over it."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import torch

from tuneforge import threads
from tuneforge.threads import Choice


def _stat(*cpus: tuple[int, int]) -> str:
    """/proc/stat text with one line per CPU of (busy ticks, idle ticks)."""
    lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
    lines += [f"cpu{i} {busy} 0 0 {idle} 0 0 0 0 0 0" for i, (busy, idle) in enumerate(cpus)]
    return "\n".join([*lines, "intr 1 2 3", "ctxt 42"]) + "\n"


@pytest.fixture
def two_cores(monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: None)


@pytest.fixture
def fake_stat(tmp_path, monkeypatch, two_cores):
    """/proc/stat before and after the sample: ``after`` is written when the sampler sleeps."""
    path = tmp_path / "stat"
    monkeypatch.setattr(threads, "PROC_STAT", path)
    slept = []

    def sample(before: str, after: str) -> float:
        path.write_text(before)
        monkeypatch.setattr(threads.time, "sleep", lambda s: slept.append(s) or path.write_text(after))
        return threads.busy_cores()

    yield sample
    assert all(s <= 0.2 for s in slept)  # the measurement stays cheap


def test_busy_cores_are_what_other_processes_used_while_this_one_slept(fake_stat):
    assert fake_stat(_stat((100, 900), (100, 900)), _stat((110, 900), (100, 910))) == 1.0
    assert fake_stat(_stat((100, 900), (100, 900)), _stat((100, 910), (100, 910))) == 0.0
    assert fake_stat(_stat((0, 0), (0, 0)), _stat((10, 0), (10, 0))) == 2.0
    # iowait counts as idle, steal (the hypervisor's) as busy
    before = "cpu0 0 0 0 0 0 0 0 0\ncpu1 0 0 0 0 0 0 0 0\n"
    after = "cpu0 0 0 0 0 10 0 0 0\ncpu1 0 0 0 5 0 0 0 5\n"
    assert fake_stat(before, after) == 0.5


def test_no_proc_stat_means_nothing_busy(tmp_path, monkeypatch, two_cores):
    monkeypatch.setattr(threads, "PROC_STAT", tmp_path / "missing")
    monkeypatch.setattr(threads.time, "sleep", lambda s: pytest.fail("no sample without /proc/stat"))
    assert threads.busy_cores() == 0.0


def test_free_cores_round_the_busy_ones_and_never_go_below_one(two_cores):
    assert threads.free_cores(2, 0.0) == (2, 0)
    assert threads.free_cores(2, 0.3) == (2, 0)  # a little background work is not a busy core
    assert threads.free_cores(2, 0.9) == (1, 1)
    assert threads.free_cores(2, 2.0) == (1, 2)
    assert threads.free_cores(2, 5.0) == (1, 5)


def test_a_cgroup_quota_caps_the_cores(tmp_path, monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr(threads, "CGROUP", tmp_path)
    monkeypatch.setattr(threads, "SELF_CGROUP", tmp_path / "self-cgroup")
    (tmp_path / "self-cgroup").write_text("0::/\n")
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads.usable_cores() == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads.usable_cores() == 8
    (tmp_path / "cpu.max").write_text("300000 100000\n")
    assert threads.usable_cores() == 3
    # the quota caps what this process gets; other processes' busy cores count among all eight
    assert threads.free_cores(3, 4.0) == (3, 4)
    assert threads.free_cores(3, 6.0) == (2, 6)


def test_the_automatic_choice_and_its_line(monkeypatch, two_cores):
    monkeypatch.setattr(threads, "busy_cores", lambda: 1.0)
    choice = threads.choose(None, {})
    assert choice == Choice(1, 2, "auto", 1) and choice.contended
    assert choice.line("set train.num_threads to choose") == (
        "threads: 1 of 2 cores (another process is busy on 1); set train.num_threads to choose"
    )
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.0)
    quiet = threads.choose(None, {})
    assert quiet == Choice(2, 2, "auto", 0) and not quiet.contended
    assert (
        quiet.line("set OMP_NUM_THREADS to choose") == "threads: 2 of 2 cores; set OMP_NUM_THREADS to choose"
    )


def test_what_wins_over_the_automatic_choice(monkeypatch, two_cores):
    monkeypatch.setattr(threads, "busy_cores", lambda: pytest.fail("measured though the user chose"))
    env = {"OMP_NUM_THREADS": "3", threads.PARENT_ENV: "1"}
    assert threads.choose(4, env) == Choice(4, 2, "config")
    assert threads.choose(4, env).line("x") == "threads: 4 of 2 cores (train.num_threads)"
    assert threads.choose(None, env) == Choice(3, 2, "env")
    assert (
        threads.choose(None, env).line("x") == "threads: 3 of 2 cores (OMP_NUM_THREADS=3 in the environment)"
    )
    parent = threads.choose(None, {threads.PARENT_ENV: "1"})
    assert parent == Choice(1, 2, "parent")
    assert parent.line("set train.num_threads to choose") == (
        "threads: 1 of 2 cores (chosen once for every candidate); set train.num_threads to choose"
    )


@pytest.mark.parametrize("unusable", [0, -2, True, "x", 1.5, None])
def test_a_setting_that_is_no_positive_count_is_left_to_validation(unusable, monkeypatch, two_cores):
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.0)
    assert threads.choose(unusable, {}).source == "auto"
    assert threads.choose(None, {"OMP_NUM_THREADS": str(unusable)}).source == "auto"


def test_apply_sets_torch_threads_and_waits_passively_only_in_a_fresh_contended_process(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    try:
        threads.apply(Choice(1, 2, "auto", 1), fresh_process=True)
        assert torch.get_num_threads() == 1
        assert "OMP_WAIT_POLICY" not in os.environ  # torch is loaded here: too late to matter
        monkeypatch.setattr(threads, "sys", SimpleNamespace(modules={}))  # as before torch loads
        threads.apply(Choice(1, 2, "auto", 1), fresh_process=False)
        assert "OMP_WAIT_POLICY" not in os.environ  # inside another program: its environment stays
        threads.apply(Choice(1, 2, "auto", 0), fresh_process=True)
        assert "OMP_WAIT_POLICY" not in os.environ  # nothing else busy: the default policy
        monkeypatch.setenv("GOMP_SPINCOUNT", "1000")
        threads.apply(Choice(1, 2, "auto", 1), fresh_process=True)
        assert "OMP_WAIT_POLICY" not in os.environ  # the user's own tuning stays
        monkeypatch.delenv("GOMP_SPINCOUNT")
        threads.apply(Choice(1, 2, "auto", 1), fresh_process=True)
        assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    finally:
        torch.set_num_threads(before)


def test_start_says_nothing_for_help_and_one_line_when_a_model_loads(monkeypatch, caplog, two_cores):
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.0)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv(threads.PARENT_ENV, raising=False)
    with caplog.at_level("INFO", logger="tuneforge"), threads.command(fresh_process=False):
        for nothing_to_run in (["run", "--help"], ["--help-config"], []):
            assert threads.start(nothing_to_run, False) is None
        threads.announce()
        assert caplog.messages == []
        assert threads.start(["run"], False, setting=1) == Choice(1, 2, "config")
        assert torch.get_num_threads() == 1
        threads.announce()
        threads.announce()  # once
        threads.start(["run"], False, setting=1)  # a command that ends before a model loads...
    threads.announce()  # ...leaves no line for the next one
    assert caplog.messages == ["threads: 1 of 2 cores (train.num_threads)"]


def test_scoped_and_restored_give_the_count_back():
    before = torch.get_num_threads()
    with threads.scoped(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with threads.scoped(None):
        assert torch.get_num_threads() == before
    with threads.command(fresh_process=False):
        torch.set_num_threads(1)
    assert torch.get_num_threads() == before


def test_a_sweep_chooses_once_for_all_its_candidates(tmp_path, monkeypatch, caplog, two_cores):
    monkeypatch.setattr(threads, "busy_cores", lambda: 1.0)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv(threads.PARENT_ENV, raising=False)
    config = tmp_path / "base.yaml"
    config.write_text("train:\n  max_steps: 2\n")
    argv = [str(config), "--grid", "train.learning_rate=1e-4,3e-4"]
    assert threads.choose_for_children(argv, fresh_process=False) is None  # each candidate chooses
    assert threads.PARENT_ENV not in os.environ
    assert threads.choose_for_children(argv, fresh_process=True) == Choice(1, 2, "auto", 1)
    assert os.environ[threads.PARENT_ENV] == "1"  # the candidates (child processes) inherit it
    with caplog.at_level("INFO", logger="tuneforge"):
        threads.announce()
    assert caplog.messages == [
        "threads: 1 of 2 cores for every candidate (another process is busy on 1); "
        "set train.num_threads to choose"
    ]
    monkeypatch.delenv(threads.PARENT_ENV)
    for chosen in (
        [*argv, "--grid", "train.num_threads=1,2"],  # the grid
        [*argv, "train.num_threads=2"],  # an override
    ):
        assert threads.choose_for_children(chosen, fresh_process=True) is None
    config.write_text("train:\n  num_threads: 2\n")  # the config
    assert threads.choose_for_children(argv, fresh_process=True) is None
    assert threads.PARENT_ENV not in os.environ
