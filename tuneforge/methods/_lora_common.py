"""What `lora` and `qlora` share: the LoRA config fields and putting a PEFT LoRA adapter on a model.

The target modules are checked against the model before PEFT sees them, so a typo fails with the
model's own linear layer names instead of PEFT's generic message.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from torch import nn

from tuneforge.errors import ConfigError
from tuneforge.methods._base import MethodConfig


class LoraFields(MethodConfig):
    r: int = Field(8, gt=0, description="LoRA rank: the inner dimension of the low-rank update B @ A.")
    lora_alpha: int = Field(
        16, gt=0, description="Scale numerator: the update is multiplied by lora_alpha / r (commonly 2 x r)."
    )
    lora_dropout: float = Field(
        0.05, ge=0, lt=1, description="Dropout on the adapter's input during training (0 <= x < 1)."
    )
    target_modules: Literal["all-linear"] | list[str] = Field(
        "all-linear",
        description="Layers that get an adapter: 'all-linear' (every linear layer but the output head) or "
        "a list of module names such as [q_proj, v_proj].",
    )
    modules_to_save: list[str] = Field(
        default_factory=list,
        description="Modules trained in full and saved with the adapter, e.g. [lm_head, embed_tokens] "
        "after adding tokens.",
    )
    bias: Literal["none", "all", "lora_only"] = Field(
        "none", description="Which biases train: none, all, or those of the adapted layers (lora_only)."
    )

    @field_validator("target_modules")
    @classmethod
    def _non_empty(cls, value):
        if isinstance(value, list) and not value:
            raise ValueError("give at least one module name, or 'all-linear'")
        return value


def lora_config(cfg: LoraFields):
    """The PEFT ``LoraConfig`` for these fields."""
    from peft import LoraConfig

    return LoraConfig(
        task_type="CAUSAL_LM",
        r=cfg.r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.target_modules,
        modules_to_save=cfg.modules_to_save or None,
        bias=cfg.bias,
    )


def apply_lora(model: nn.Module, cfg: LoraFields):
    """Check the targets against ``model`` and wrap it in a PEFT LoRA model."""
    from peft import get_peft_model

    check_targets(model, cfg)
    peft_cfg = lora_config(cfg)
    if type(model).__name__.endswith("ForSequenceClassification"):  # the `rm` stage's reward model
        peft_cfg.task_type = "SEQ_CLS"  # PEFT then trains and saves the new score head too
    return get_peft_model(model, peft_cfg)


def linear_module_names(model: nn.Module) -> list[str]:
    """Distinct short names of the model's linear layers, the output head excluded."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and m is not head
        }
    )


def check_targets(model: nn.Module, cfg: LoraFields) -> None:
    """Raise a ConfigError naming the model's layers when a target or module_to_save matches nothing."""
    modules = dict(model.named_modules())
    # the layer types PEFT's LoRA can adapt (bitsandbytes' 4- and 8-bit layers subclass nn.Linear)
    adaptable = [
        n
        for n, m in modules.items()
        if isinstance(m, nn.Linear | nn.Embedding | nn.Conv1d | nn.Conv2d) or type(m).__name__ == "Conv1D"
    ]
    if isinstance(cfg.target_modules, list):
        for target in cfg.target_modules:
            if not any(_matches(n, target) for n in adaptable):
                raise ConfigError(
                    f"method.target_modules: {target!r} matches no linear layer of this model; its linear "
                    f"layers are: {', '.join(linear_module_names(model))} (or use 'all-linear')"
                )
    for name in cfg.modules_to_save:
        if not any(_matches(n, name) for n in modules if n):
            top = sorted({n.rsplit(".", 1)[-1] for n in modules if n and not n.split(".")[-1].isdigit()})
            raise ConfigError(
                f"method.modules_to_save: {name!r} matches no module of this model; module names: {', '.join(top)}"
            )


def _matches(module_name: str, key: str) -> bool:
    # PEFT's rule for a list of names: the full name, or its last dotted components
    return module_name == key or module_name.endswith("." + key)
