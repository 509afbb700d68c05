"""What glibc does with the memory of freed tensors, set by `tuneforge.speed.setup` at the start of
training (never at import): `train.keep_freed_memory` (auto) keeps it, `train.return_freed_memory`
(opt-in) gives it back.

**Kept** (``keep_freed_memory``): every allocation is served from the heap (``M_MMAP_MAX`` 0) and the
heap is never trimmed (``M_TRIM_THRESHOLD`` -1), so a freed activation's pages stay mapped and the
next tensor of that size reuses them without a page fault. With glibc's defaults, tensors above
the (moving) mmap threshold are mapped and unmapped every time, and the heap's top is trimmed
whenever a backward pass frees enough of it, so a later step maps fresh pages again: on SmolLM2
LoRA steps that took tens of thousands of page faults after step 1, and with huge pages each fresh
2 MiB is zeroed at once (a SiLU over a fresh 12 MB output took 13.5 ms instead of 0.7 ms). The
price is that the process keeps its peak heap until it exits. Auto turns it on only when tensors
lie in huge pages (`train.huge_pages`): their 2 MiB-aligned blocks were reused exactly, with a flat
resident size over 12 SmolLM2 steps, while PyTorch's usual 64-byte aligned blocks fragmented the
never-trimmed heap (a freed 64 MiB block was not reused for the next one of the same size, and a
SmolLM2 run grew by 250 MB at step 10).

**Given back** (``return_freed_memory``):
glibc serves allocations above its mmap threshold with their own mappings, unmapped on free, and
smaller ones from its heap, which only shrinks from the top. The threshold starts at 128 KiB but
rises to the size of each mapped block freed, up to 32 MiB. A training step frees activation
tensors of a few MiB all the time, so the threshold soon sits above them: they then come from the
heap, small long-lived allocations land between them, and the process keeps the memory of freed
activations. On SmolLM2 (LoRA, 8 x 512 tokens) that was a third of the peak resident memory
(docs/speed.md). Setting the threshold once with ``mallopt`` fixes it at 1 MiB (glibc stops
moving it), so every tensor from 1 MiB up is returned to the system when freed. The price: each
such allocation maps fresh pages and each free unmaps them (with two CPU threads the SmolLM2 step
took about a third longer), so it is opt-in, for runs that would not fit otherwise. Trimming the
heap between steps (``malloc_trim``) was measured too and did not lower the peak. Other C
libraries are left alone.
"""

from __future__ import annotations

import ctypes
import platform

# glibc's mallopt parameter numbers (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
THRESHOLD_BYTES = 1 << 20
GLIBC_MMAP_MAX = 65536  # glibc's defaults, restored when memory is to be given back
GLIBC_TRIM_THRESHOLD = 128 * 1024


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def fix_mmap_threshold(threshold: int = THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes (and undo `keep_freed_memory`, which a
    previous run in this process may have set); False where the C library is not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    return all(
        libc.mallopt(param, value) == 1
        for param, value in (
            (M_MMAP_MAX, GLIBC_MMAP_MAX),
            (M_TRIM_THRESHOLD, GLIBC_TRIM_THRESHOLD),
            (M_MMAP_THRESHOLD, threshold),
        )
    )


def keep_freed_memory() -> bool:
    """Serve every allocation from glibc's heap and never trim it; False where it is not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    return libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, -1) == 1
