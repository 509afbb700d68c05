"""Transparent huge pages for big CPU tensors: `train.huge_pages`, set by the `tuneforge train`
process before anything is allocated (`set_at_process_start`, called by `tuneforge.cli.main`; the
benchmark does the same) and checked when `tuneforge.train.run_training` starts.

PyTorch puts CPU allocations of 2 MiB and more in memory advised for 2 MiB transparent huge pages
(``madvise(MADV_HUGEPAGE)``) when the environment has ``THP_MEM_ALLOC_ENABLE=1``. An activation of
SmolLM2 then spans a few dozen pages instead of thousands: fewer TLB misses in the matrix multiplies
and elementwise passes, and one page fault per 2 MiB when the process takes fresh memory. On this
repository's 2-core VM that is about a tenth more tokens per second (docs/speed.md). The numbers
computed are the same; only where the memory lies changes.

PyTorch reads the variable once, at its first CPU allocation, and importing peft or bitsandbytes
(which loading a config does) already allocates. So the `tuneforge train` process (also each
candidate of `tuneforge sweep`, which runs as one) sets it first thing (`set_at_process_start`, from a plain read of the config file and the
``key=value`` arguments), and `enable_huge_pages` checks at the start of the run that it took; in
a process that had allocated before (a test session, a notebook) it says it could not.
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


def set_at_process_start(argv: list[str]) -> None:
    """First thing in a `tuneforge train` process: set THP_MEM_ALLOC_ENABLE=1 unless
    the environment has it already, the kernel offers no huge pages, or the config (its file and
    ``key=value`` arguments, read unvalidated; the run validates them) says train.huge_pages false."""
    if argv[:1] != ["train"] or ENV in os.environ or not offered():
        return
    from tuneforge.config.raw import read_raw

    words = [a for a in argv[1:] if not a.startswith("-")]
    path = words[0] if words and "=" not in words[0] else None
    try:
        train = read_raw(path, [w for w in words if "=" in w]).get("train")
    except ConfigError:
        train = None  # loading the config reports it
    if not (isinstance(train, dict) and train.get("huge_pages") is False):
        os.environ[ENV] = "1"


def enable_huge_pages(want: bool | None) -> tuple[bool, str]:
    """Turn huge pages on for this process's CPU tensors (``want`` None: wherever the kernel offers
    them; True: refuse where they cannot be had; False: leave alone). Returns (on, why not)."""
    if want is False:
        if os.environ.get(ENV) == "1" and in_effect():  # the user's own environment
            return True, f"train.huge_pages=false, but {ENV}=1 in the environment keeps them on"
        return False, ""
    if not offered():
        mode = kernel_mode()
        if want:
            raise ConfigError(
                f"train.huge_pages=true, but this system offers no transparent huge pages (kernel mode "
                f"{mode or 'unknown'}, {THP_MODE}); set it to null or false"
            )
        return False, f"huge pages off: the kernel's transparent huge page mode is {mode or 'unknown'}"
    os.environ.setdefault(ENV, "1")
    if in_effect():
        return True, ""
    why = (
        f"{ENV}={os.environ[ENV]} in the environment"
        if os.environ[ENV] != "1"
        else "PyTorch allocated memory before the run started, and reads the setting only then"
    )
    if want:
        raise ConfigError(
            f"train.huge_pages=true, but huge pages could not be turned on ({why}); start the run with "
            f"`tuneforge train`, or set {ENV}=1 in the environment before Python starts"
        )
    return False, f"huge pages off: {why}"
