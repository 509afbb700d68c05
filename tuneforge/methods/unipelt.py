"""`unipelt`: gated LoRA + prefix + adapter (Mao et al. 2022, UniPELT, https://arxiv.org/abs/2110.07577).

In every decoder block: LoRA on the query and value projections, learned prefix keys/values in
attention, and a bottleneck adapter after the MLP; each LoRA and adapter output is multiplied by
its own gate ``sigmoid(W_g x + b_g)`` computed from the input it adapts, so training learns which
submodule helps. Simplification: the prefix gate is one learned scalar per layer (the paper's is
per token), which keeps the prefix a single attention call. All pieces come from `_pieces`
(PEFT's prefix tuning cannot be combined with other tuners); LoRA and the adapter start at zero,
gates half open. Saved like `adapter` (trained tensors only); not mergeable (the gates depend on
the input).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.errors import ConfigError
from tuneforge.methods._adapter_common import AdapterFields, block_layers, bottleneck_size
from tuneforge.methods._base import no_load_kwargs
from tuneforge.methods._pieces import (
    Bottleneck,
    LowRank,
    attach_after,
    attach_parallel,
    attach_prefixes,
    freeze_base,
)
from tuneforge.methods._saved import own_adapter_hooks

DESCRIPTION = "UniPELT: LoRA (q, v) + prefix + adapter, each behind a learned gate."
SUPPORTS = {"quantized_base": False, "merge": False, "multi_adapter": False}
_LORA_TARGETS = ("q_proj", "v_proj")


class Config(AdapterFields):
    name: Literal["unipelt"] = "unipelt"
    r: int = Field(8, gt=0, description="Rank of the gated LoRA on the query and value projections.")
    lora_alpha: int = Field(16, gt=0, description="LoRA scale numerator: the update is times lora_alpha / r.")
    num_virtual_tokens: int = Field(10, gt=0, description="Prefix length: learned key/value pairs per layer.")


load_kwargs = no_load_kwargs


def apply(model, cfg: Config):
    device = next(model.parameters()).device
    hidden = model.config.get_text_config().hidden_size
    size = bottleneck_size(hidden, cfg)
    layers = block_layers(model)
    for layer in layers:
        for name in _LORA_TARGETS:
            proj = getattr(layer.self_attn, name, None)
            if proj is None:
                raise ConfigError(
                    f"unipelt puts LoRA on self_attn.{name}, which {type(layer).__name__} lacks; use method.name=mam"
                )
            attach_parallel(
                proj, "lora", LowRank(proj.in_features, proj.out_features, cfg.r, cfg.lora_alpha, True)
            )
        attach_after(layer.mlp, "adapter", Bottleneck(hidden, size, hidden, cfg.non_linearity, gate=True))
    attach_prefixes(model, layers, cfg.num_virtual_tokens, gate=True)
    freeze_base(model)
    return model.to(device)


save_adapter, load_adapter, disable_adapter = own_adapter_hooks(apply)
