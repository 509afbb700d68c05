"""`p_tuning`: virtual tokens produced by a small trained prompt encoder (Liu et al. 2021, P-tuning,
https://arxiv.org/abs/2103.10385): an MLP or a bidirectional LSTM turns the virtual-token
embeddings into the prompt, which trains more stably than raw prompt tuning.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.methods._base import no_load_kwargs
from tuneforge.methods._prompt_common import SUPPORTS, PromptFields, apply_prompt_learning

DESCRIPTION = "P-tuning: virtual tokens produced by a trained prompt encoder (MLP or LSTM)."
__all__ = ["SUPPORTS"]


class Config(PromptFields):
    name: Literal["p_tuning"] = "p_tuning"
    encoder_reparameterization_type: Literal["MLP", "LSTM"] = Field(
        "MLP", description="Prompt encoder: MLP (3 linear layers) or LSTM (bidirectional, then an MLP head)."
    )
    encoder_hidden_size: int | None = Field(
        None, gt=0, description="Hidden size of the prompt encoder; none: the model's hidden size."
    )
    encoder_num_layers: int = Field(2, gt=0, description="LSTM layers (the MLP always has 2 hidden layers).")
    encoder_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout inside the prompt encoder.")


load_kwargs = no_load_kwargs


def apply(model, cfg: Config):
    from peft import PromptEncoderConfig

    config = PromptEncoderConfig(
        task_type="CAUSAL_LM",
        num_virtual_tokens=cfg.num_virtual_tokens,
        encoder_reparameterization_type=cfg.encoder_reparameterization_type,
        encoder_hidden_size=cfg.encoder_hidden_size or model.config.get_text_config().hidden_size,
        encoder_num_layers=cfg.encoder_num_layers,
        encoder_dropout=cfg.encoder_dropout,
    )
    return apply_prompt_learning(model, config)
