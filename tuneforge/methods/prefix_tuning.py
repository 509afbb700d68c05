"""`prefix_tuning`: trained key/value prefixes in the attention of every layer (Li & Liang 2021,
https://arxiv.org/abs/2101.00190; P-tuning v2, Liu et al. 2022, https://arxiv.org/abs/2110.07602).
Deeper than prompt tuning (every layer is steered, not only the input), still no weight changes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tuneforge.methods._base import no_load_kwargs
from tuneforge.methods._prompt_common import SUPPORTS, PromptFields, apply_prompt_learning

DESCRIPTION = "Prefix tuning (P-tuning v2): trained key/value prefixes in every attention layer."
__all__ = ["SUPPORTS"]


class Config(PromptFields):
    name: Literal["prefix_tuning"] = "prefix_tuning"
    prefix_projection: bool = Field(
        False,
        description="Produce the prefixes through a trained 2-layer MLP (the paper's reparameterisation) "
        "instead of training them directly.",
    )
    encoder_hidden_size: int | None = Field(
        None,
        gt=0,
        description="Hidden size of that MLP (prefix_projection only); none: the model's hidden size.",
    )

    @model_validator(mode="after")
    def _projection_size(self):
        if self.encoder_hidden_size and not self.prefix_projection:
            raise ValueError("encoder_hidden_size is only used with prefix_projection: true; set that too")
        return self


load_kwargs = no_load_kwargs


def apply(model, cfg: Config):
    from peft import PrefixTuningConfig

    config = PrefixTuningConfig(
        task_type="CAUSAL_LM",
        num_virtual_tokens=cfg.num_virtual_tokens,
        prefix_projection=cfg.prefix_projection,
        encoder_hidden_size=cfg.encoder_hidden_size or model.config.get_text_config().hidden_size,
    )
    return apply_prompt_learning(model, config)
