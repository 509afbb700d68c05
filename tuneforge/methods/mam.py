"""`mam`: the "Mix-And-Match" adapter (He et al. 2022, https://arxiv.org/abs/2110.04366): prefix
tuning in every attention layer plus a scaled parallel bottleneck adapter beside every MLP,
``mlp(x) + scaling * up(act(down(x)))``, the combination that paper found best.

PEFT's prefix tuning cannot be combined with other tuners, so both pieces come from `_pieces`:
the prefix is learned keys/values put in front of the real ones inside attention (an attention
function wrapping PyTorch SDPA), the adapter starts at zero. The prefix changes the outputs from
the start (the attention also spreads over the prefix), as in prefix tuning. Saved like `adapter`
(trained tensors only); not mergeable.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.methods._adapter_common import AdapterFields, block_layers, bottleneck_size
from tuneforge.methods._base import no_load_kwargs
from tuneforge.methods._pieces import Bottleneck, attach_parallel, attach_prefixes, freeze_base
from tuneforge.methods._saved import own_adapter_hooks

DESCRIPTION = "MAM adapter: prefix tuning in attention + a scaled parallel adapter beside each MLP."
SUPPORTS = {"quantized_base": False, "merge": False, "multi_adapter": False}


class Config(AdapterFields):
    name: Literal["mam"] = "mam"
    num_virtual_tokens: int = Field(
        16,
        gt=0,
        description="Prefix length: learned key/value pairs per attention layer (the paper used 30).",
    )
    scaling: float = Field(
        4.0, gt=0, description="Multiplier on the parallel adapter's output (the paper's s=4)."
    )


load_kwargs = no_load_kwargs


def apply(model, cfg: Config):
    device = next(model.parameters()).device
    hidden = model.config.get_text_config().hidden_size
    size = bottleneck_size(hidden, cfg)
    layers = block_layers(model)
    for layer in layers:
        attach_parallel(
            layer.mlp, "parallel_adapter", Bottleneck(hidden, size, hidden, cfg.non_linearity, cfg.scaling)
        )
    attach_prefixes(model, layers, cfg.num_virtual_tokens)
    freeze_base(model)
    return model.to(device)


save_adapter, load_adapter, disable_adapter = own_adapter_hooks(apply)
