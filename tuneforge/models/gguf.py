"""GGUF files as a model source (step 5, called by `tuneforge.models.load.resolve_model_source`).

transformers reads GGUF and dequantizes it to float32, but a model loaded that way refuses
`save_pretrained`, and every load pays the dequantization again. So a .gguf file is converted
once into a plain HF folder (weights, config without `quantization_config`, tokenizer with its
chat template) under ``$TUNEFORGE_CACHE/models/gguf-<sha256 prefix>``; later loads read that
folder like any other, and find it without reading the GGUF again (its digest is remembered per
path, size and modification time in ``$TUNEFORGE_CACHE/gguf-digests.json``). The folder appears
atomically and only after its logits matched the GGUF. A truncated file (a download or copy cut
short) is refused first, naming the file.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import logging
import os
import shutil
import struct
import tempfile
from pathlib import Path

import torch

from tuneforge.errors import ModelError

log = logging.getLogger(__name__)

SOURCE_NOTE = "tuneforge-source.json"
DIGESTS = "gguf-digests.json"  # under the cache root: path -> size, mtime and sha256 of each GGUF used
# Both sides run the same float32 weights through the same code, so they agree to the last bit
# in practice; the small slack only absorbs kernel differences between two loads.
LOGITS_TOLERANCE = 1e-5


def cache_root() -> Path:
    """The tuneforge cache: ``$TUNEFORGE_CACHE`` or ``~/.cache/tuneforge``."""
    return Path(os.environ.get("TUNEFORGE_CACHE") or "~/.cache/tuneforge").expanduser()


def file_digest(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime): in memory, and in the cache's
    `DIGESTS` so that each command (a one-shot `tuneforge chat`) does not read a large GGUF again."""
    st = path.stat()
    return _digest(str(path.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    index = cache_root() / DIGESTS
    known = _read_digests(index)
    entry = known.get(path)
    if isinstance(entry, dict) and entry.get("size") == size and entry.get("mtime_ns") == mtime_ns:
        return str(entry["sha256"])
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    known[path] = {"size": size, "mtime_ns": mtime_ns, "sha256": h.hexdigest()}
    _write_digests(index, known)
    return h.hexdigest()


def _read_digests(index: Path) -> dict:
    try:
        known = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or damaged: hashing again is the fix
        return {}
    return known if isinstance(known, dict) else {}


def _write_digests(index: Path, known: dict) -> None:
    # files that are gone are dropped; two processes writing at once lose one entry, hashed again later
    known = {p: e for p, e in known.items() if Path(p).is_file()}
    tmp = None
    try:
        index.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{index.name}-", dir=index.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(known, f, indent=1)
        os.replace(tmp, index)
    except OSError as e:  # a read-only cache only costs the hashing next time
        log.debug("could not remember file digests in %s: %s", index, e)
        if tmp:
            Path(tmp).unlink(missing_ok=True)


def converted_dir(path: Path) -> Path:
    """Where the converted folder for this GGUF file lives (keyed by content, not by name)."""
    return cache_root() / "models" / f"gguf-{file_digest(path)[:16]}"


def ensure_converted(path: Path) -> Path:
    """Return the HF folder converted from ``path``, converting it first if it is not cached."""
    path = Path(path).expanduser().resolve()
    target = converted_dir(path)
    if (target / SOURCE_NOTE).is_file():
        return target
    log.info("converting %s once into %s (cached for next time)", path.name, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        convert(path, tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            # another process finished the same conversion first; its folder is equivalent
            if not (target / SOURCE_NOTE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@contextlib.contextmanager
def _tensor_bar_follows_transformers():
    """transformers' per-tensor GGUF bar uses tqdm directly, so it ignores its own progress-bar switch
    (which `tuneforge.console` turns off unless --verbose); here it follows that switch."""
    from transformers.utils import logging as tf_logging

    try:
        from transformers import modeling_gguf_pytorch_utils as reader
    except ImportError:  # moved: its bar shows, nothing else changes
        yield
        return
    before = getattr(reader, "tqdm", None)
    if before is None or tf_logging.is_progress_bar_enabled():
        yield
        return
    reader.tqdm = functools.partial(before, disable=True)
    try:
        yield
    finally:
        reader.tqdm = before


def convert(path: Path, out: Path) -> None:
    """Write ``path`` (a .gguf file) as a plain HF model folder into ``out`` and verify it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuneforge.models.state_dict import model_from_state_dict

    check_complete(path)
    try:
        with _tensor_bar_follows_transformers():
            gguf_model = AutoModelForCausalLM.from_pretrained(
                path.parent, gguf_file=path.name, dtype=torch.float32
            )
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    except (OSError, ValueError, KeyError, struct.error) as e:
        raise ModelError(f"cannot read {path} as a GGUF model: {e}") from e
    gguf_model.eval()

    config = copy.deepcopy(gguf_model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = model_from_state_dict(config, gguf_model.state_dict(), dtype=torch.float32)
    plain.generation_config = copy.deepcopy(gguf_model.generation_config)
    plain.save_pretrained(out)
    del plain
    tokenizer.save_pretrained(out)

    diff = _max_logit_diff(gguf_model, out)
    if diff > LOGITS_TOLERANCE:
        raise ModelError(
            f"converting {path} changed the model's outputs (max logit difference {diff:.2e}); "
            "nothing was cached. Please report this with the GGUF file's name"
        )
    note = {
        "gguf_file": str(path),
        "sha256": file_digest(path),
        "size": path.stat().st_size,
        "max_logit_diff": diff,
    }
    (out / SOURCE_NOTE).write_text(json.dumps(note, indent=2), encoding="utf-8")


def check_complete(path: Path) -> None:
    """A ModelError when ``path`` is a GGUF file cut short: its header or tensors run past its end.
    Walks the header itself (gguf's GGUFReader builds every vocabulary entry: seconds per file)."""
    import mmap

    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            return  # not a GGUF file at all: the loader says so
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            try:
                end = _tensor_data_end(data)
            except (struct.error, ValueError, OverflowError):
                raise ModelError.damaged(path, f"{size} bytes, its header runs past the end") from None
    if end is not None and end > size:
        raise ModelError.damaged(path, f"{size} bytes, fewer than its tensors need")


_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF value type -> bytes
_STRING, _ARRAY = 8, 9


def _tensor_data_end(data) -> int | None:
    """The byte offset where the last tensor ends, read from the header of the GGUF bytes ``data``;
    None for a version or tensor type this does not know."""
    try:
        from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
    except ImportError:
        return None
    pos = 4

    def read(fmt: str) -> int:
        nonlocal pos
        value = struct.unpack_from(fmt, data, pos)[0]  # struct.error past the end
        pos += struct.calcsize(fmt)
        return value

    def skip(kind: int) -> None:
        nonlocal pos
        if kind in _FIXED:
            pos += _FIXED[kind]
        elif kind == _STRING:
            length = read("<Q")  # read first: ``pos += read(...)`` would add to the old pos
            pos += length
        elif kind == _ARRAY:
            item, count = read("<I"), read("<Q")
            if item in _FIXED:
                pos += _FIXED[item] * count
            else:
                for _ in range(count):
                    skip(item)
        else:
            raise ValueError(f"unknown GGUF value type {kind}")
        if pos > len(data):
            raise ValueError("past the end")

    if read("<I") < 2:  # version 1 used 32-bit counts; transformers does not read it either
        return None
    n_tensors, n_kv = read("<Q"), read("<Q")
    alignment = 32
    for _ in range(n_kv):
        length = read("<Q")
        key, pos = bytes(data[pos : pos + length]), pos + length
        kind = read("<I")
        if key == b"general.alignment" and kind == 4:
            alignment = read("<I")
        else:
            skip(kind)
    ends = []
    for _ in range(n_tensors):
        length = read("<Q")  # the name
        pos += length
        elements = 1
        for _ in range(read("<I")):
            elements *= read("<Q")
        kind, offset = read("<I"), read("<Q")
        try:
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
        except (ValueError, KeyError):
            return None
        ends.append(offset + elements // block * type_size)
    start = -(-pos // alignment) * alignment
    return start + max(ends, default=0)


@torch.no_grad()
def _max_logit_diff(gguf_model, folder: Path) -> float:
    """Compare the GGUF-loaded model with the folder as plain transformers reads it back."""
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    reloaded.eval()
    ids = (torch.arange(1, 17) % gguf_model.config.vocab_size).unsqueeze(0)
    return (gguf_model(input_ids=ids).logits - reloaded(input_ids=ids).logits).abs().max().item()
