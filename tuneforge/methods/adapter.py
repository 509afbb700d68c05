"""`adapter`: bottleneck adapters (Houlsby et al. 2019, https://arxiv.org/abs/1902.00751; Pfeiffer
et al. 2021, https://arxiv.org/abs/2005.00247). PEFT has no bottleneck adapters, so they are built
here from `_pieces`: in every decoder block a small down-project / non-linearity / up-project module
adds its output to the sublayer's (Houlsby: after the attention output projection and after the MLP;
Pfeiffer: after the MLP only). The up-projection starts at zero, so training starts from the base.

The run saves only the adapters (`_saved`): ``RUN_DIR/adapter/tuneforge_adapter.safetensors``.
They add non-linear modules, so they cannot be merged into the base weights.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import nn

from tuneforge.errors import ConfigError
from tuneforge.methods._adapter_common import AdapterFields, block_layers, bottleneck_size
from tuneforge.methods._base import no_load_kwargs
from tuneforge.methods._pieces import Bottleneck, attach_after, freeze_base
from tuneforge.methods._saved import own_adapter_hooks

DESCRIPTION = "Bottleneck adapters (Houlsby / Pfeiffer) after the attention and/or MLP; base frozen."
SUPPORTS = {"quantized_base": False, "merge": False, "multi_adapter": False}


class Config(AdapterFields):
    name: Literal["adapter"] = "adapter"
    placement: Literal["houlsby", "pfeiffer"] = Field(
        "pfeiffer",
        description="houlsby: an adapter after the attention output and one after the MLP of every block; "
        "pfeiffer: one after the MLP only (half the parameters, about as accurate).",
    )
    scaling: float = Field(1.0, gt=0, description="Multiplier on the adapter's output.")


load_kwargs = no_load_kwargs


def apply(model, cfg: Config):
    device = next(model.parameters()).device
    hidden = model.config.get_text_config().hidden_size
    size = bottleneck_size(hidden, cfg)
    for layer in block_layers(model):
        if cfg.placement == "houlsby":
            piece = Bottleneck(hidden, size, hidden, cfg.non_linearity, cfg.scaling)
            attach_after(_attention_output(layer), "adapter", piece)
        attach_after(layer.mlp, "adapter", Bottleneck(hidden, size, hidden, cfg.non_linearity, cfg.scaling))
    freeze_base(model)
    return model.to(device)  # the new pieces were built on the CPU


def _attention_output(layer: nn.Module) -> nn.Module:
    """The attention's output projection (o_proj, or dense / out_proj in some families)."""
    for name in ("o_proj", "out_proj", "dense"):
        if isinstance(getattr(layer.self_attn, name, None), nn.Linear):
            return getattr(layer.self_attn, name)
    raise ConfigError(
        f"cannot find the attention output projection of {type(layer).__name__}; use placement=pfeiffer"
    )


save_adapter, load_adapter, disable_adapter = own_adapter_hooks(apply)
