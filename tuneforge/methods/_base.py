"""Shared pieces of method modules: the config base, ``load_kwargs`` for an unquantized base, and
the model's decoder blocks (`freeze`, `llama_pro` and the bottleneck adapters work on them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from tuneforge.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn


class MethodConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def no_load_kwargs(cfg: MethodConfig) -> dict:
    """``load_kwargs`` of methods that load the base as it is (no quantization)."""
    return {}


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's list of decoder blocks: ``model.model.layers``, else the ModuleList with
    ``num_hidden_layers`` entries."""
    from torch import nn  # configs import this module; only a model needs torch

    inner = getattr(model, "model", None)
    if isinstance(getattr(inner, "layers", None), nn.ModuleList):
        return inner.layers
    count = getattr(model.config.get_text_config(), "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return module
    raise ConfigError(
        f"cannot find the decoder layers of {type(model).__name__}; select parameters with "
        "method.trainable_modules instead of method.trainable_layers"
    )
