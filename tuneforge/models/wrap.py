"""Step 5 of a run, second half: apply the tuning method to the loaded model.

This is the one place that calls a method's ``apply``. Afterwards it logs how many parameters
train and refuses to go on when none do, so a misconfigured method fails here, before any data
reaches the trainer.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from tuneforge.errors import ConfigError, TrainingError
from tuneforge.methods import METHODS

log = logging.getLogger(__name__)


def wrap(model: torch.nn.Module, method_cfg: Any) -> torch.nn.Module:
    """Apply ``method_cfg``'s method to ``model`` and return the model to train."""
    method = METHODS.get(method_cfg.name)
    if getattr(model, "is_quantized", False) and not method.SUPPORTS.get("quantized_base", False):
        raise ConfigError(
            f"method {method_cfg.name!r} cannot train a quantized base model; use method.name=qlora, "
            "or load the model unquantized"
        )
    model = method.apply(model, method_cfg)
    trainable, total = count_parameters(model)
    log.info(
        "trainable params: %s of %s (%.2f%%)", f"{trainable:,}", f"{total:,}", 100 * trainable / max(total, 1)
    )
    if trainable == 0:
        settings = ", ".join(f"{k}={v!r}" for k, v in method_cfg.model_dump(exclude={"name"}).items())
        raise TrainingError(
            f"method {method_cfg.name!r} left no parameter trainable"
            + (f" with {settings}" if settings else "")
            + "; change the method.* settings so they select some parameters "
            "(`tuneforge config reference` lists them)"
        )
    return model


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; tied weights count once, 4-bit weights by their
    logical number of elements rather than their packed storage."""
    trainable = total = 0
    for p in model.parameters():
        n = _logical_numel(p)
        total += n
        if p.requires_grad:
            trainable += n
    return trainable, total


def _logical_numel(p: torch.Tensor) -> int:
    # bitsandbytes packs two 4-bit values per byte and keeps the original shape in quant_state
    state = getattr(p, "quant_state", None)
    shape = getattr(state, "shape", None)
    return int(torch.Size(shape).numel()) if shape is not None else p.numel()


def method_shares(model_path: str) -> dict[str, str]:
    """Each method's trainable / total parameters on the model, with the method's default config.
    The model loads once; each method gets a fresh copy (a quantizing method loads its own)."""
    import copy

    from tuneforge.config.schema import ModelConfig
    from tuneforge.errors import TuneforgeError
    from tuneforge.methods import METHODS
    from tuneforge.models.load import load_model

    model_cfg = ModelConfig(name_or_path=model_path)
    base = None
    out = {}
    for name in METHODS.names():
        cfg = METHODS.get(name).Config()
        try:
            if METHODS.get(name).load_kwargs(cfg):  # e.g. qlora quantizes while loading
                model = load_model(model_cfg, cfg)
            else:
                base = base if base is not None else load_model(model_cfg, cfg)
                model = copy.deepcopy(base)
            trainable, total = count_parameters(wrap(model, cfg))
            out[name] = f"{trainable:>13,} of {total:,} ({100 * trainable / total:6.2f}%)"
        except TuneforgeError as e:
            out[name] = f"n/a ({e})"
    return out
