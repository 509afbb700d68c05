"""Transparent huge pages for big CPU tensors (`speed.huge_pages`): set by the `tuneforge train`
process start (`tuneforge.commands.train.start_process`) and checked, never changed, by the run.

PyTorch puts CPU allocations of 2 MiB and more in memory advised for 2 MiB transparent huge pages
(``madvise(MADV_HUGEPAGE)``) when the environment has ``THP_MEM_ALLOC_ENABLE=1``: fewer TLB misses
and page faults, the same numbers computed. PyTorch reads the variable once, at its first CPU
allocation, and importing peft or bitsandbytes already allocates, so only a process that sets it
before those imports gets them; a run inside another process (a notebook, a test session) says so.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from tuneforge.errors import ConfigError

THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")
ENV = "THP_MEM_ALLOC_ENABLE"


def kernel_mode() -> str | None:
    """The kernel's transparent huge page mode (``always``, ``madvise`` or ``never``), None where
    there is none (not Linux, or no THP support)."""
    try:
        text = THP_MODE.read_text()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else None


@functools.cache  # PyTorch reads the setting once per process, so the answer cannot change
def in_effect() -> bool:
    """Whether a fresh 4 MiB CPU tensor lies in memory advised for huge pages (``hg`` among its
    mapping's VmFlags in /proc/self/smaps)."""
    import torch

    probe = torch.empty(1 << 20)
    address = probe.data_ptr()
    try:
        lines = Path("/proc/self/smaps").read_text().splitlines()
    except OSError:
        return False
    inside = False
    for line in lines:
        head = line.split(" ", 1)[0]
        if "-" in head and ":" not in head:  # a mapping's first line: "start-end perms ..."
            start, end = (int(x, 16) for x in head.split("-"))
            inside = start <= address < end
        elif inside and line.startswith("VmFlags:"):
            return "hg" in line.split()[1:]
    return False


def offered() -> bool:
    """Whether the kernel gives huge pages to memory advised for them."""
    return kernel_mode() in ("always", "madvise")


def set_at_process_start(speed: dict) -> None:
    """First thing in a `tuneforge train` process: set THP_MEM_ALLOC_ENABLE=1 unless the environment
    has it already, the kernel offers no huge pages, or the raw ``speed`` section says huge_pages false."""
    if ENV in os.environ or not offered() or speed.get("huge_pages") is False:
        return
    os.environ[ENV] = "1"


def check_huge_pages(want: bool | None) -> tuple[bool, str]:
    """Whether CPU tensors lie in huge pages in this process (``want`` True: refuse where they do not;
    a run never changes the setting itself). Returns (on, why not)."""
    if want is False:
        if os.environ.get(ENV) == "1" and in_effect():  # the user's own environment
            return True, f"speed.huge_pages=false, but {ENV}=1 in the environment keeps them on"
        return False, ""
    if not offered():
        mode = kernel_mode()
        if want:
            raise ConfigError(
                f"speed.huge_pages=true, but this system offers no transparent huge pages (kernel mode "
                f"{mode or 'unknown'}, {THP_MODE}); set it to null or false"
            )
        return False, f"huge pages off: the kernel's transparent huge page mode is {mode or 'unknown'}"
    if in_effect():
        return True, ""
    why = (
        f"{ENV}={os.environ[ENV]} in the environment"
        if os.environ.get(ENV, "1") != "1"
        else "they are set when the `tuneforge train` process starts, and this process did not start so"
    )
    if want:
        raise ConfigError(
            f"speed.huge_pages=true, but huge pages are not on ({why}); start the run with "
            f"`tuneforge train`, or set {ENV}=1 in the environment before Python starts"
        )
    return False, f"huge pages off: {why}"
