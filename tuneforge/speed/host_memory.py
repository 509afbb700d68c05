"""What glibc does with the memory of freed tensors, set by `tuneforge.speed.setup` at the start of
training (never at import): `speed.keep_freed_memory` (auto) keeps it, `speed.return_freed_memory`
(opt-in) gives it back. The measurements behind both are in bench/RESULTS.md.

**Kept** (``keep_freed_memory``): every allocation is served from the heap (``M_MMAP_MAX`` 0) and the
heap is never trimmed (``M_TRIM_THRESHOLD`` -1), so a freed activation's pages stay mapped and the
next tensor of that size reuses them without a page fault. With glibc's defaults, tensors above
the (moving) mmap threshold are mapped and unmapped every time, and the heap's top is trimmed
whenever a backward pass frees enough of it, so later steps map fresh pages again, and with huge
pages each fresh 2 MiB is zeroed at once. The price is that the process keeps its peak heap until
it exits. Auto only with huge pages (`speed.huge_pages`): their 2 MiB-aligned blocks are reused
exactly, while PyTorch's usual 64-byte aligned blocks fragment the never-trimmed heap.

**Given back** (``return_freed_memory``):
glibc serves allocations above its mmap threshold with their own mappings, unmapped on free, and
smaller ones from its heap, which only shrinks from the top. The threshold starts at 128 KiB but
rises to the size of each mapped block freed, up to 32 MiB. A training step frees activation
tensors of a few MiB all the time, so the threshold soon sits above them: they then come from the
heap, small long-lived allocations land between them, and the process keeps the memory of freed
activations. Setting the threshold once with ``mallopt`` fixes it at 1 MiB (glibc stops moving it),
so every tensor from 1 MiB up is returned to the system when freed. The price: each such
allocation maps fresh pages and each free unmaps them, so steps are slower and it is opt-in, for
runs that would not fit otherwise (trimming the heap between steps, ``malloc_trim``, does not lower
the peak). Other C libraries are left alone.
"""

from __future__ import annotations

import ctypes
import platform

# what this process's allocator was set to by the functions below ("keep", "return" or None)
APPLIED: dict[str, str | None] = {"mode": None}

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
    APPLIED["mode"] = "return"
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
    APPLIED["mode"] = "keep"
    return libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, -1) == 1


def apply_at_process_start(speed: dict) -> str | None:
    """The `tuneforge train` process start: `speed.return_freed_memory` (opt-in) or
    `speed.keep_freed_memory` (auto: under glibc when CPU tensors lie in huge pages), from the raw,
    unvalidated ``speed`` section (validation refuses both true later, so neither is set then)."""
    want_keep, want_return = speed.get("keep_freed_memory"), speed.get("return_freed_memory")
    if want_keep is True and want_return is True:
        return None
    if want_return is True:
        return "return" if fix_mmap_threshold() else None
    if want_keep is False:
        return None
    if want_keep is None:
        from tuneforge.speed.huge_pages import in_effect

        if not in_effect():
            return None
    return "keep" if keep_freed_memory() else None
