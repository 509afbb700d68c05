"""`llama_pro`: block expansion (Wu et al. 2024, LLaMA Pro, https://arxiv.org/abs/2401.02415).

The decoder's L blocks are split into ``num_expand`` equal groups and after the last block of
each group a copy of that block is inserted, with its output projections (attention ``o_proj``,
MLP ``down_proj``) zeroed: the copy adds nothing to the residual stream, so the expanded model
starts with exactly the base's outputs. Only the new blocks train. Every block's ``layer_idx``
(the KV-cache slot) is renumbered and the config's ``num_hidden_layers`` / ``layer_types`` grow,
so the saved ``model/`` is an ordinary, deeper model that plain transformers loads (no merge
needed). `disable_adapter` takes the new blocks out again for the base's outputs.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from tuneforge.errors import ConfigError
from tuneforge.methods._base import MethodConfig, no_load_kwargs

DESCRIPTION = "LLaMA-Pro: insert identity-initialised copies of decoder blocks and train only those."
SUPPORTS = {"quantized_base": False, "merge": True, "multi_adapter": False}


class Config(MethodConfig):
    name: Literal["llama_pro"] = "llama_pro"
    num_expand: int = Field(
        1,
        gt=0,
        description="New blocks to insert, one after each of num_expand equal groups of the existing "
        "blocks (the paper adds 8 to LLaMA-2-7B's 32); must not exceed the number of blocks.",
    )


load_kwargs = no_load_kwargs


def _insert_after(num_layers: int, num_expand: int) -> list[int]:
    """Indices of the original blocks that get a copy after them (the last of each group)."""
    return [(g + 1) * num_layers // num_expand - 1 for g in range(num_expand)]


def apply(model, cfg: Config):
    from tuneforge.methods._base import decoder_layers

    layers = decoder_layers(model)
    text = model.config.get_text_config()
    if cfg.num_expand > len(layers):
        raise ConfigError(
            f"method.num_expand={cfg.num_expand} but the model has {len(layers)} decoder layers; "
            f"insert at most {len(layers)} blocks"
        )
    for p in model.parameters():
        p.requires_grad_(False)
    after = set(_insert_after(len(layers), cfg.num_expand))
    types = list(getattr(text, "layer_types", None) or [])
    expanded, new_types = [], []
    for i, layer in enumerate(layers):
        expanded.append(layer)
        new_types += types[i : i + 1]
        if i in after:
            block = copy.deepcopy(layer)
            _zero_outputs(block)
            block.requires_grad_(True)
            block.tuneforge_expanded = True
            expanded.append(block)
            new_types += types[i : i + 1]
    _set_layers(model, layers, expanded, new_types or None)
    return model


def _zero_outputs(block: nn.Module) -> None:
    outs = [getattr(getattr(block, part, None), name, None) for part, name in _OUTPUTS]
    outs = [m for m in outs if isinstance(m, nn.Linear)]
    if len(outs) != 2:
        raise ConfigError(
            f"llama_pro needs decoder blocks with self_attn.o_proj and mlp.down_proj (Llama, Qwen2, Mistral "
            f"style); {type(block).__name__} differs; use method.name=freeze or lora"
        )
    with torch.no_grad():
        for m in outs:
            m.weight.zero_()
            if m.bias is not None:
                m.bias.zero_()


_OUTPUTS = (("self_attn", "o_proj"), ("mlp", "down_proj"))


def _set_layers(model, old: nn.ModuleList, blocks: list[nn.Module], layer_types: list[str] | None) -> None:
    """Fill the decoder's ModuleList with ``blocks`` and make the config and every ``layer_idx`` agree."""
    for key in list(old._modules):
        del old._modules[key]
    old.extend(blocks)
    for idx, block in enumerate(blocks):
        for m in block.modules():
            if hasattr(m, "layer_idx"):
                m.layer_idx = idx
    for config in {id(c): c for c in (model.config, model.config.get_text_config())}.values():
        config.num_hidden_layers = len(blocks)
        if layer_types is not None and hasattr(config, "layer_types"):
            config.layer_types = layer_types


@contextmanager
def disable_adapter(model):
    """Within the block the inserted blocks are taken out: the base's layers, indices and config."""
    from tuneforge.methods._base import decoder_layers

    layers = decoder_layers(model)
    blocks = list(layers)
    text = model.config.get_text_config()
    types = list(getattr(text, "layer_types", None) or [])
    keep = [i for i, b in enumerate(blocks) if not getattr(b, "tuneforge_expanded", False)]
    _set_layers(model, layers, [blocks[i] for i in keep], [types[i] for i in keep] if types else None)
    try:
        yield model
    finally:
        _set_layers(model, layers, blocks, types or None)
