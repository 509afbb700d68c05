"""`speed.return_freed_memory`: with glibc's mmap threshold fixed, freed activation-sized tensors go
back to the system; with glibc's default (a threshold that rises as blocks are freed) they stay in
the heap. `speed.keep_freed_memory`: a big tensor freed stays in glibc's heap and the next one of its
size reuses it, where glibc's default maps fresh pages for each. Each side runs in a fresh process,
since the setting is process-wide."""

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
import ctypes, resource, sys, torch
if sys.argv[1] == "keep":
    from tuneforge.speed.host_memory import keep_freed_memory
    assert keep_freed_memory()
class Info(ctypes.Structure):  # glibc's struct mallinfo2
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL("libc.so.6"); libc.mallinfo2.restype = Info
# small objects made between the free and the next allocation must not split the freed block:
# make them once first, so glibc's free lists hold their sizes
for _ in range(2):  # 64 MiB: above glibc's highest moving mmap threshold (32 MiB)
    t = torch.empty(64 << 20, dtype=torch.uint8); t.fill_(1); del t
faults, mapped_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, libc.mallinfo2().hblkhd
t = torch.empty(64 << 20, dtype=torch.uint8); t.fill_(1)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
mapped_alone, address = libc.mallinfo2().hblkhd - mapped_before, t.data_ptr()
del t
held_free = libc.mallinfo2().fordblks
again = torch.empty(64 << 20, dtype=torch.uint8)
print(mapped_alone >> 20, held_free >> 20, int(again.data_ptr() == address), faults)
"""


def reuse_of_a_freed_block(mode: str) -> dict[str, int]:
    """In a fresh process: MiB glibc mapped on their own while the block was live, MiB of free
    memory its heap held after the free, whether the next block of that size took the same address,
    and the page faults of filling that block."""
    env = dict(os.environ, THP_MEM_ALLOC_ENABLE="1")  # 2 MiB-aligned blocks, as auto uses it
    out = subprocess.run(
        [sys.executable, "-c", REUSE, mode], capture_output=True, text=True, check=True, env=env
    )
    values = map(int, out.stdout.split()[-4:])
    return dict(zip(("mapped_alone_mb", "held_free_mb", "same_address", "faults"), values, strict=True))


def test_kept_memory_stays_in_the_heap_and_is_reused():
    # what keep_freed_memory sets is glibc's: the block comes from the never-trimmed heap and the
    # next one reuses it, so its pages stay mapped; how many faults a fill takes is the kernel's
    # (huge-page policy, NUMA balancing), so the faults ride along in the message only
    kept, default = reuse_of_a_freed_block("keep"), reuse_of_a_freed_block("default")
    assert kept["mapped_alone_mb"] == 0 and kept["held_free_mb"] >= 64, (kept, default)
    assert kept["same_address"] == 1, (kept, default)
    assert default["mapped_alone_mb"] >= 64 and default["held_free_mb"] < 64, (kept, default)


def test_process_start_keeps_with_huge_pages_and_gives_way_to_return(monkeypatch):
    from tuneforge.speed import host_memory, huge_pages

    calls = []  # process-wide settings: record the calls instead of changing this test process
    monkeypatch.setattr(host_memory, "keep_freed_memory", lambda: calls.append("keep") or True)
    monkeypatch.setattr(host_memory, "fix_mmap_threshold", lambda: calls.append("return") or True)
    for in_effect in (True, False):
        monkeypatch.setattr(huge_pages, "in_effect", lambda v=in_effect: v)
        calls.clear()
        assert host_memory.apply_at_process_start({}) == ("keep" if in_effect else None)
        assert calls == (["keep"] if in_effect else [])
    calls.clear()
    assert host_memory.apply_at_process_start({"keep_freed_memory": True}) == "keep"
    assert calls == ["keep"]  # asked for: on without huge pages too
    monkeypatch.setattr(huge_pages, "in_effect", lambda: True)
    calls.clear()
    assert host_memory.apply_at_process_start({"return_freed_memory": True}) == "return"
    assert calls == ["return"]
    calls.clear()
    assert (
        host_memory.apply_at_process_start({"keep_freed_memory": True, "return_freed_memory": True}) is None
    )
    assert calls == []  # validation refuses the pair, so nothing is set


def test_a_run_reports_the_process_setting_and_refuses_one_it_did_not_get(tiny_llama_dir, monkeypatch):
    from transformers import AutoModelForCausalLM

    from tuneforge.config.train import SpeedConfig
    from tuneforge.errors import ConfigError
    from tuneforge.speed import host_memory
    from tuneforge.speed.setup import apply_speedups
    from tuneforge.stages import STAGES

    support = STAGES.get("sft").SPEED
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    monkeypatch.setitem(host_memory.APPLIED, "mode", None)
    assert apply_speedups(model, SpeedConfig(), 64, support).freed_memory is None
    with pytest.raises(ConfigError, match="only the `tuneforge train` command sets it"):
        apply_speedups(model, SpeedConfig(return_freed_memory=True), 64, support)
    monkeypatch.setitem(host_memory.APPLIED, "mode", "return")
    assert apply_speedups(model, SpeedConfig(return_freed_memory=True), 64, support).freed_memory == "return"
    with pytest.raises(ValueError, match="opposite things"):
        SpeedConfig(keep_freed_memory=True, return_freed_memory=True)
