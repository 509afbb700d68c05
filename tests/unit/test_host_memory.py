"""`train.return_freed_memory`: with glibc's mmap threshold fixed, freed activation-sized tensors go
back to the system; with glibc's default (a threshold that rises as blocks are freed) they stay in
the heap. `train.keep_freed_memory`: a big tensor allocated again after a free takes no page
faults, where glibc's default maps fresh pages. Each side runs in a fresh process, since the setting
is process-wide."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")

SCRIPT = """
import sys, torch
from tuneforge.speed.host_memory import fix_mmap_threshold, keep_freed_memory
if sys.argv[1] == "fixed after keep":  # an earlier run in the same process kept memory
    assert keep_freed_memory()
if sys.argv[1].startswith("fixed"):
    assert fix_mmap_threshold()
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
first = torch.empty(8 << 20, dtype=torch.uint8); first.fill_(1); del first  # raises glibc's threshold
keep, big = [], []
for _ in range(60):  # activation-sized tensors with small long-lived ones between them
    t = torch.empty(5 << 20, dtype=torch.uint8); t.fill_(1); big.append(t)
    keep.append(torch.ones(64))
before = rss_mb()
big.clear()
print(before - rss_mb())
"""


def returned_mb(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def test_freed_tensors_go_back_to_the_system_only_with_the_fixed_threshold():
    assert returned_mb("fixed") > 250  # of the 300 MiB freed
    assert returned_mb("fixed after keep") > 250
    assert returned_mb("default") < 50


REUSE = """
import resource, sys, torch
if sys.argv[1] == "keep":
    from tuneforge.speed.host_memory import keep_freed_memory
    assert keep_freed_memory()
for _ in range(2):  # 64 MiB: above glibc's highest moving mmap threshold (32 MiB)
    t = torch.empty(64 << 20, dtype=torch.uint8); t.fill_(1); del t
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
t = torch.empty(64 << 20, dtype=torch.uint8); t.fill_(1)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
"""


def faults_of_a_reused_block(mode: str) -> int:
    env = dict(os.environ, THP_MEM_ALLOC_ENABLE="1")  # 2 MiB-aligned blocks, as auto uses it
    out = subprocess.run(
        [sys.executable, "-c", REUSE, mode], capture_output=True, text=True, check=True, env=env
    )
    return int(out.stdout.split()[-1])


def test_kept_memory_is_reused_without_page_faults():
    kept, default = faults_of_a_reused_block("keep"), faults_of_a_reused_block("default")
    assert kept < 20, kept
    assert default >= 30, default  # 64 MiB of fresh pages: 32 huge or 16384 small ones


def test_keep_is_auto_with_huge_pages_and_gives_way_to_return(tiny_llama_dir, monkeypatch):
    from transformers import AutoModelForCausalLM

    from tuneforge.config.schema import TrainConfig
    from tuneforge.errors import ConfigError
    from tuneforge.speed import host_memory, huge_pages
    from tuneforge.speed.setup import apply_speedups

    calls = []  # process-wide settings: record the calls instead of changing this test process
    monkeypatch.setattr(host_memory, "keep_freed_memory", lambda: calls.append("keep") or True)
    monkeypatch.setattr(host_memory, "fix_mmap_threshold", lambda: calls.append("return") or True)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    for in_effect in (True, False):
        monkeypatch.setattr(huge_pages, "in_effect", lambda v=in_effect: v)
        calls.clear()
        plan = apply_speedups(model, TrainConfig(), max_length=64)
        assert plan.keep_freed_memory is in_effect and calls == (["keep"] if in_effect else [])
    calls.clear()
    assert apply_speedups(model, TrainConfig(keep_freed_memory=True), max_length=64).keep_freed_memory
    assert calls == ["keep"]  # asked for: on without huge pages too
    monkeypatch.setattr(huge_pages, "in_effect", lambda: True)
    calls.clear()
    plan = apply_speedups(model, TrainConfig(return_freed_memory=True), max_length=64)
    assert not plan.keep_freed_memory and plan.return_freed_memory and calls == ["return"]
    with pytest.raises(ConfigError, match="opposite things"):
        apply_speedups(model, TrainConfig(keep_freed_memory=True, return_freed_memory=True), 64)


def test_training_turns_it_on_only_when_asked(tiny_llama_dir, monkeypatch):
    from transformers import AutoModelForCausalLM

    from tuneforge.config.schema import TrainConfig
    from tuneforge.speed import host_memory
    from tuneforge.speed.setup import apply_speedups

    calls = []  # the setting is process-wide: record the call instead of changing this test process
    monkeypatch.setattr(host_memory, "fix_mmap_threshold", lambda: calls.append(1) or True)
    monkeypatch.setattr(host_memory, "keep_freed_memory", lambda: True)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    assert not apply_speedups(model, TrainConfig(), max_length=64).return_freed_memory
    assert not calls
    assert apply_speedups(model, TrainConfig(return_freed_memory=True), max_length=64).return_freed_memory
    assert calls == [1]
