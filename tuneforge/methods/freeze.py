"""`freeze`: the base stays frozen except the last N decoder layers, a range of layers
(`trainable_layer_range`), and/or the parameters matching `trainable_modules`, optionally plus
the embeddings and the output head. No adapter: the run saves the whole model, like `full`.
"""

from __future__ import annotations

import logging
import re
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import Field, field_validator, model_validator
from torch import nn

from tuneforge.errors import ConfigError
from tuneforge.methods._base import MethodConfig, decoder_layers, no_load_kwargs

log = logging.getLogger(__name__)

DESCRIPTION = "Partial fine-tuning: only the last N decoder layers (or chosen modules) train."
SUPPORTS = {"quantized_base": False, "merge": False, "multi_adapter": False}


class Config(MethodConfig):
    name: Literal["freeze"] = "freeze"
    trainable_layers: int = Field(
        2,
        ge=0,
        description="Train the last N decoder layers (default 2, or 0 when trainable_modules is given).",
    )
    trainable_layer_range: tuple[int, int] | None = Field(
        None,
        description="Train the decoder layers from the first to the second index, both included, counting "
        "from 0, e.g. [2, 5] (replaces the trainable_layers default when given).",
    )
    trainable_modules: list[str] = Field(
        default_factory=list,
        description="Also train parameters under these modules: names or glob patterns over dotted "
        "parameter names, e.g. [mlp], ['layers.0.*'], ['*.q_proj'].",
    )
    train_embeddings: bool = Field(False, description="Also train the input embeddings.")
    train_lm_head: bool = Field(
        False, description="Also train the output head (with tied embeddings this is the same weight)."
    )

    @model_validator(mode="before")
    @classmethod
    def _modules_replace_layer_default(cls, data):
        chosen = isinstance(data, dict) and (
            data.get("trainable_modules") or data.get("trainable_layer_range")
        )
        if chosen and "trainable_layers" not in data:
            data = {**data, "trainable_layers": 0}
        return data

    @field_validator("trainable_layer_range")
    @classmethod
    def _ordered(cls, value):
        if value is not None and not 0 <= value[0] <= value[1]:
            raise ValueError(f"give [first, last] with 0 <= first <= last, got {list(value)}")
        return value


load_kwargs = no_load_kwargs


def apply(model, cfg: Config):
    for p in model.parameters():
        p.requires_grad_(False)
    chosen: list[nn.Parameter] = []
    if cfg.trainable_layers:
        layers = decoder_layers(model)
        if cfg.trainable_layers > len(layers):
            raise ConfigError(
                f"method.trainable_layers={cfg.trainable_layers} but the model has {len(layers)} decoder layers"
            )
        for layer in layers[len(layers) - cfg.trainable_layers :]:
            chosen.extend(layer.parameters())
    if cfg.trainable_layer_range is not None:
        first, last = cfg.trainable_layer_range
        layers = decoder_layers(model)
        if last >= len(layers):
            raise ConfigError(
                f"method.trainable_layer_range=[{first}, {last}] but the model has {len(layers)} decoder layers "
                f"(0 to {len(layers) - 1})"
            )
        for layer in layers[first : last + 1]:
            chosen.extend(layer.parameters())
    named = dict(model.named_parameters(remove_duplicate=False))
    for pattern in cfg.trainable_modules:
        hits = [p for n, p in named.items() if _matches(n, pattern)]
        if not hits:
            raise ConfigError(
                f"method.trainable_modules: {pattern!r} matches no parameter of this model; its modules look "
                f"like: {', '.join(_example_modules(named))}"
            )
        chosen.extend(hits)
    embeddings = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    head = head.weight if head is not None else None
    if cfg.train_embeddings:
        chosen.append(embeddings)
    if cfg.train_lm_head and head is not None:
        chosen.append(head)
    if head is embeddings and cfg.train_embeddings != cfg.train_lm_head:
        log.info("embeddings and lm_head share one weight (tied), so training one trains both")
    for p in chosen:
        p.requires_grad_(True)
    return model


def _matches(param_name: str, pattern: str) -> bool:
    """``pattern`` names (or globs) a run of whole dotted components of ``param_name``:
    'mlp' matches 'model.layers.0.mlp.up_proj.weight' but 'norm' does not match 'input_layernorm'."""
    return any(
        fnmatchcase(param_name, p) for p in (pattern, f"*.{pattern}", f"{pattern}.*", f"*.{pattern}.*")
    )


def _example_modules(named: dict[str, nn.Parameter], limit: int = 12) -> list[str]:
    # module names from layer 0 and outside the layers only, so the list stays short
    mods = dict.fromkeys(n.rsplit(".", 1)[0] for n in named if not re.search(r"\.[1-9]\d*\.", n))
    return list(mods)[:limit]
