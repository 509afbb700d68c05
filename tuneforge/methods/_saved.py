"""The small artifact of the methods PEFT lacks (`adapter`, `mam`, `unipelt`): only the trained
tensors (safetensors, named as in the adapted model) and the method config (JSON). Written by
those methods' ``save_adapter`` hook into ``RUN_DIR/adapter/`` and read back by ``load_adapter``,
which re-applies the method to a fresh base and then copies the tensors in. `own_adapter_hooks`
builds both hooks (and ``disable_adapter``) for a method from its ``apply``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from tuneforge.errors import ModelError
from tuneforge.methods._pieces import disabled

WEIGHTS = "tuneforge_adapter.safetensors"
CONFIG = "tuneforge_adapter.json"


def save_trained(model: nn.Module, cfg, directory: str | Path) -> None:
    """Write ``model``'s trainable parameters and ``cfg`` (the method config) to ``directory``."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
    save_file(tensors, directory / WEIGHTS, metadata={"format": "pt", "method": cfg.name})
    (directory / CONFIG).write_text(json.dumps(cfg.model_dump(mode="json"), indent=2), encoding="utf-8")


@torch.no_grad()
def load_trained(model: nn.Module, directory: str | Path) -> nn.Module:
    """Copy the saved tensors into ``model`` (the method already applied); every saved tensor
    must find its parameter and every trainable parameter must be saved."""
    from safetensors.torch import load_file

    path = Path(directory) / WEIGHTS
    if not path.is_file():
        raise ModelError(f"{path} is missing: {directory} is not a tuneforge method adapter")
    state = load_file(path)
    params = dict(model.named_parameters())
    unknown = sorted(set(state) - set(params))
    missing = sorted(n for n, p in params.items() if p.requires_grad and n not in state)
    if unknown or missing:
        raise ModelError(
            f"{path} does not fit this model (unknown tensors: {unknown[:3]}, missing: {missing[:3]}); "
            "load it onto the base model and method config it was trained with"
        )
    for name, tensor in state.items():
        params[name].copy_(tensor.to(params[name].device, params[name].dtype))
    return model


def own_adapter_hooks(apply: Callable) -> tuple[Callable, Callable, Callable]:
    """``save_adapter``, ``load_adapter`` and ``disable_adapter`` for a method whose ``apply``
    attaches `_pieces` (see tuneforge/methods/__init__.py for the hooks)."""

    def save_adapter(model: nn.Module, cfg, directory) -> None:
        save_trained(model, cfg, directory)

    def load_adapter(base_model: nn.Module, cfg, directory) -> nn.Module:
        return load_trained(apply(base_model, cfg), directory)

    def disable_adapter(model: nn.Module):
        return disabled(model)

    return save_adapter, load_adapter, disable_adapter
