"""`train.return_freed_memory`: with glibc's mmap threshold fixed, freed activation-sized tensors go
back to the system; with glibc's default (a threshold that rises as blocks are freed) they stay in
the heap. Each side runs in a fresh process, since the setting is process-wide."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")

SCRIPT = """
import sys, torch
if sys.argv[1] == "fixed":
    from tuneforge.speed.host_memory import fix_mmap_threshold
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
    assert returned_mb("default") < 50


def test_training_turns_it_on_only_when_asked(tiny_llama_dir, monkeypatch):
    from transformers import AutoModelForCausalLM

    from tuneforge.config.schema import TrainConfig
    from tuneforge.speed import host_memory
    from tuneforge.speed.setup import apply_speedups

    calls = []  # the setting is process-wide: record the call instead of changing this test process
    monkeypatch.setattr(host_memory, "fix_mmap_threshold", lambda: calls.append(1) or True)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    assert not apply_speedups(model, TrainConfig(), max_length=64).return_freed_memory
    assert not calls
    assert apply_speedups(model, TrainConfig(return_freed_memory=True), max_length=64).return_freed_memory
    assert calls == [1]
