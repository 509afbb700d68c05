"""GGUF files as a model source (step 5, called by `tuneforge.models.load.resolve_model_source`).

transformers reads GGUF and dequantizes it to float32, but a model loaded that way refuses
`save_pretrained`, and every load pays the dequantization again. So a .gguf file is converted
once into a plain HF folder (weights, config without `quantization_config`, tokenizer with its
chat template) under ``$TUNEFORGE_CACHE/models/gguf-<sha256 prefix>``; later loads read that
folder like any other. The folder appears atomically and only after its logits matched the GGUF.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch

from tuneforge.errors import ModelError

log = logging.getLogger(__name__)

SOURCE_NOTE = "tuneforge-source.json"
# Both sides run the same float32 weights through the same code, so they agree to the last bit
# in practice; the small slack only absorbs kernel differences between two loads.
LOGITS_TOLERANCE = 1e-5


def cache_root() -> Path:
    """The tuneforge cache: ``$TUNEFORGE_CACHE`` or ``~/.cache/tuneforge``."""
    return Path(os.environ.get("TUNEFORGE_CACHE") or "~/.cache/tuneforge").expanduser()


def file_digest(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so a run hashes a large GGUF once."""
    st = path.stat()
    return _digest(str(path.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def convert(path: Path, out: Path) -> None:
    """Write ``path`` (a .gguf file) as a plain HF model folder into ``out`` and verify it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuneforge.models.load import model_from_state_dict

    try:
        gguf_model = AutoModelForCausalLM.from_pretrained(
            path.parent, gguf_file=path.name, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    except (OSError, ValueError, KeyError) as e:
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


@torch.no_grad()
def _max_logit_diff(gguf_model, folder: Path) -> float:
    """Compare the GGUF-loaded model with the folder as plain transformers reads it back."""
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    reloaded.eval()
    ids = (torch.arange(1, 17) % gguf_model.config.vocab_size).unsqueeze(0)
    return (gguf_model(input_ids=ids).logits - reloaded(input_ids=ids).logits).abs().max().item()
