"""Host memory given back when tensors are freed: `train.return_freed_memory`, applied by
`tuneforge.speed.setup` at the start of training (never at import).

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

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
THRESHOLD_BYTES = 1 << 20


def fix_mmap_threshold(threshold: int = THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes; False where the C library is not glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return libc.mallopt(M_MMAP_THRESHOLD, threshold) == 1
