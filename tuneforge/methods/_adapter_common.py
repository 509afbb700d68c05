"""What the bottleneck adapters (`adapter`, `mam`, `unipelt`) share: their bottleneck fields, the
bottleneck size those give, and the decoder blocks their `_pieces` attach to."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import nn

from tuneforge.errors import ConfigError
from tuneforge.methods._base import MethodConfig, decoder_layers


class AdapterFields(MethodConfig):
    reduction_factor: int = Field(
        16, gt=0, description="Bottleneck size = hidden_size / reduction_factor (rounded down, at least 1)."
    )
    bottleneck_size: int | None = Field(
        None, gt=0, description="Bottleneck size in units; overrides reduction_factor when given."
    )
    non_linearity: Literal["relu", "gelu", "silu", "tanh"] = Field(
        "relu", description="Activation between the down- and the up-projection."
    )


def bottleneck_size(hidden: int, cfg: AdapterFields) -> int:
    return cfg.bottleneck_size or max(1, hidden // cfg.reduction_factor)


def block_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder blocks, checked to have the ``self_attn`` / ``mlp`` parts the pieces attach to."""
    layers = decoder_layers(model)
    for layer in layers:
        if not (hasattr(layer, "self_attn") and hasattr(layer, "mlp")):
            raise ConfigError(
                f"the decoder blocks of {type(model).__name__} have no self_attn / mlp modules, which "
                "this method attaches to; use method.name=lora"
            )
    return layers
