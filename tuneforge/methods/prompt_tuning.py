"""`prompt_tuning`: a few trained embedding vectors prepended to every input (Lester et al. 2021,
https://arxiv.org/abs/2104.08691); the model stays frozen. Trains num_virtual_tokens x hidden
parameters; strong for large models, weaker for small ones.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tuneforge.methods._base import no_load_kwargs
from tuneforge.methods._prompt_common import SUPPORTS, PromptFields, apply_prompt_learning

DESCRIPTION = "Prompt tuning: trained virtual-token embeddings prepended to the input (soft prompt)."
__all__ = ["SUPPORTS"]


class Config(PromptFields):
    name: Literal["prompt_tuning"] = "prompt_tuning"
    prompt_tuning_init: Literal["RANDOM", "TEXT", "SAMPLE_VOCAB"] = Field(
        "RANDOM",
        description="Start of the virtual tokens: RANDOM, TEXT (the embeddings of prompt_tuning_init_text, "
        "repeated to length) or SAMPLE_VOCAB (embeddings of random vocabulary tokens).",
    )
    prompt_tuning_init_text: str | None = Field(
        None, description="Text whose token embeddings start the prompt (prompt_tuning_init: TEXT)."
    )

    @model_validator(mode="after")
    def _text_for_text_init(self):
        if self.prompt_tuning_init == "TEXT" and not self.prompt_tuning_init_text:
            raise ValueError("prompt_tuning_init: TEXT needs prompt_tuning_init_text, e.g. 'Answer briefly:'")
        if self.prompt_tuning_init != "TEXT" and self.prompt_tuning_init_text:
            raise ValueError(
                "prompt_tuning_init_text is only used with prompt_tuning_init: TEXT; set that too"
            )
        return self


load_kwargs = no_load_kwargs


def apply(model, cfg: Config):
    from peft import PromptTuningConfig

    config = PromptTuningConfig(
        task_type="CAUSAL_LM",
        num_virtual_tokens=cfg.num_virtual_tokens,
        prompt_tuning_init=cfg.prompt_tuning_init,
        prompt_tuning_init_text=cfg.prompt_tuning_init_text,
        # TEXT init tokenizes with the tokenizer saved next to the model
        tokenizer_name_or_path=getattr(model, "name_or_path", None)
        if cfg.prompt_tuning_init == "TEXT"
        else None,
    )
    return apply_prompt_learning(model, config)
