"""What the prompt-learning methods share (prompt_tuning, p_tuning, prefix_tuning): the number of
virtual tokens and wrapping the model with PEFT.

These methods leave every weight of the base alone and learn extra inputs instead (virtual token
embeddings, or key/value prefixes in every layer). PEFT's causal-LM wrapper prepends them and
extends the attention mask and labels itself, in training and in ``generate``. Nothing can be
merged into the weights: export keeps the adapter (`tuneforge.models.merge` says so).
"""

from __future__ import annotations

from pydantic import Field

from tuneforge.methods._base import MethodConfig

SUPPORTS = {"quantized_base": False, "merge": False, "multi_adapter": True}


class PromptFields(MethodConfig):
    num_virtual_tokens: int = Field(
        20, gt=0, description="Number of virtual tokens (each costs context length at every step)."
    )


def apply_prompt_learning(model, peft_config):
    """Wrap ``model`` with PEFT's causal-LM prompt-learning model for ``peft_config``."""
    from peft import get_peft_model

    return get_peft_model(model, peft_config)
