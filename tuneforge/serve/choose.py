"""Which generation backend `tuneforge serve` runs: vLLM where it is installed with a CUDA GPU, else
transformers (`tuneforge.serve.backends`)."""

from __future__ import annotations

import logging

from tuneforge.errors import ConfigError
from tuneforge.serve.backends import TransformersBackend
from tuneforge.serve.catalog import Catalog

log = logging.getLogger("tuneforge")


def vllm_available() -> tuple[bool, str]:
    """Whether the vLLM backend can run here, and if not, why (for the error message)."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return False, "vLLM is not installed (pip install vllm, on a machine with a CUDA GPU)"
    import torch

    if not torch.cuda.is_available():
        return False, "vLLM is installed but no CUDA GPU is visible"
    return True, ""


def create_backend(kind: str, catalog: Catalog):
    """The backend named by ``--backend``: transformers, vllm, or auto (vllm where it can run)."""
    if kind == "auto":
        ok, why = vllm_available()
        kind = "vllm" if ok else "transformers"
        log.info("backend: %s%s", kind, "" if ok else f" ({why})")
    if kind == "transformers":
        return TransformersBackend(catalog)
    if kind == "vllm":
        ok, why = vllm_available()
        if not ok:
            raise ConfigError(f"--backend vllm: {why}; use --backend transformers (the default here)")
        from tuneforge.serve.vllm_backend import VLLMBackend

        return VLLMBackend(catalog)
    raise ConfigError(f"--backend {kind!r}: choose auto, transformers or vllm")
