"""What the PEFT weight-adapter methods share: target-module fields and their check against the
model (lora, qlora, the LoRA variants, vera, ia3, adalora), the LoRA fields, and putting a PEFT LoRA
adapter on a model.

The target modules are checked against the model before PEFT sees them, so a typo fails with the
model's own linear layer names instead of PEFT's generic message.

PiSSA and OLoRA initialise the adapter from the base weights and subtract that from the base (the
base is *mutated*). An adapter saved as is would be wrong on the original base, so `apply_lora`
keeps a copy of the initial adapter and `save_weights` hands it to PEFT's
``path_initial_model_for_weight_conversion``, which saves a plain LoRA adapter (rank 2r) that loads
onto the original base with plain peft.
"""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from torch import nn

from tuneforge.errors import ConfigError
from tuneforge.methods._base import MethodConfig

# init_lora_weights values whose initialisation moves part of the base weight into the adapter
MUTATING_INITS = ("pissa", "olora")
INIT_CHOICES = "true, false, gaussian, orthogonal, pissa, pissa_niter_N (N >= 1) or olora"


class TargetFields(MethodConfig):
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

    @field_validator("target_modules")
    @classmethod
    def _non_empty(cls, value):
        if isinstance(value, list) and not value:
            raise ValueError("give at least one module name, or 'all-linear'")
        return value


class LoraFields(TargetFields):
    r: int = Field(8, gt=0, description="LoRA rank: the inner dimension of the low-rank update B @ A.")
    lora_alpha: int = Field(
        16, gt=0, description="Scale numerator: the update is multiplied by lora_alpha / r (commonly 2 x r)."
    )
    lora_dropout: float = Field(
        0.05, ge=0, lt=1, description="Dropout on the adapter's input during training (0 <= x < 1)."
    )
    bias: Literal["none", "all", "lora_only"] = Field(
        "none", description="Which biases train: none, all, or those of the adapted layers (lora_only)."
    )
    use_rslora: bool = Field(
        False, description="rsLoRA: scale the update by lora_alpha / sqrt(r) instead of lora_alpha / r."
    )
    use_dora: bool = Field(
        False, description="DoRA: split each adapted weight into magnitude (trained vector) and direction."
    )
    init_lora_weights: bool | str = Field(
        True,
        description="Adapter initialisation (PEFT's values): true (B = 0, so training starts from the base), "
        "false (random B), gaussian, orthogonal, pissa, pissa_niter_N (fast SVD) or olora.",
    )

    @field_validator("init_lora_weights")
    @classmethod
    def _known_init(cls, value):
        if isinstance(value, bool) or value in ("gaussian", "orthogonal", "pissa", "olora"):
            return value
        if re.fullmatch(r"pissa_niter_[1-9]\d*", str(value)):
            return value
        hint = "; for LoftQ use method.name=loftq" if value == "loftq" else ""
        raise ValueError(f"init_lora_weights must be {INIT_CHOICES}, got {value!r}{hint}")

    @model_validator(mode="after")
    def _combinations(self):
        if self.use_dora and self.mutates_base():
            raise ValueError(
                f"use_dora cannot be combined with init_lora_weights={self.peft_init()!r}: the saved "
                "adapter is converted to plain LoRA for the original base, which DoRA's magnitude vector "
                "does not survive; drop one of them"
            )
        if self.peft_init() == "orthogonal" and self.r % 2:
            raise ValueError(f"init_lora_weights=orthogonal needs an even r, got r={self.r}")
        return self

    def peft_init(self) -> bool | str:
        """The value given to PEFT's ``init_lora_weights`` (variants override it)."""
        return self.init_lora_weights

    def mutates_base(self) -> bool:
        return str(self.peft_init()).startswith(MUTATING_INITS)


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
        use_rslora=cfg.use_rslora,
        use_dora=cfg.use_dora,
        init_lora_weights=cfg.peft_init(),
    )


def apply_peft(model: nn.Module, cfg: MethodConfig, peft_config):
    """Check ``cfg``'s targets against ``model``, then wrap it with PEFT for ``peft_config``."""
    from peft import get_peft_model

    check_targets(model, cfg)
    if type(model).__name__.endswith("ForSequenceClassification"):  # the `rm` stage's reward model
        peft_config.task_type = "SEQ_CLS"  # PEFT then trains and saves the new score head too
    return get_peft_model(model, peft_config)


def apply_lora(model: nn.Module, cfg: LoraFields):
    """Check the targets against ``model`` and wrap it in a PEFT LoRA model."""
    peft_model = apply_peft(model, cfg, lora_config(cfg))
    if cfg.mutates_base():
        _keep_initial_adapter(peft_model)
    return peft_model


def _keep_initial_adapter(peft_model) -> None:
    # what PEFT's PiSSA/OLoRA docs do: save the adapter right after initialisation, with
    # init_lora_weights=True in its config so loading it does not decompose the base again
    folder = Path(tempfile.mkdtemp(prefix="tuneforge-init-adapter-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    config = peft_model.peft_config["default"]
    init, config.init_lora_weights = config.init_lora_weights, True
    try:
        peft_model.save_pretrained(folder / "initial")
    finally:
        config.init_lora_weights = init
    peft_model.tuneforge_initial_adapter = str(folder / "initial")


def save_weights(model, directory: str | Path) -> None:
    """``model.save_pretrained(directory)``; an adapter whose initialisation mutated the base
    (PiSSA, OLoRA) is saved converted to plain LoRA, so it applies to the original base."""
    initial = getattr(model, "tuneforge_initial_adapter", None)
    kwargs = {"path_initial_model_for_weight_conversion": initial} if initial else {}
    model.save_pretrained(directory, safe_serialization=True, **kwargs)


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


def check_targets(model: nn.Module, cfg: TargetFields, key: str = "target_modules") -> None:
    """Raise a ConfigError naming the model's layers when a target (``cfg.<key>``, a list of names)
    or a module_to_save matches nothing."""
    modules = dict(model.named_modules())
    # the layer types PEFT can adapt (bitsandbytes' 4- and 8-bit layers subclass nn.Linear)
    adaptable = [
        n
        for n, m in modules.items()
        if isinstance(m, nn.Linear | nn.Embedding | nn.Conv1d | nn.Conv2d) or type(m).__name__ == "Conv1D"
    ]
    targets = getattr(cfg, key)
    if isinstance(targets, list):
        for target in targets:
            if not any(_matches(n, target) for n in adaptable):
                raise ConfigError(
                    f"method.{key}: {target!r} matches no linear layer of this model; its linear "
                    f"layers are: {', '.join(linear_module_names(model))}"
                    + (" (or use 'all-linear')" if key == "target_modules" else "")
                )
    for name in getattr(cfg, "modules_to_save", None) or []:
        if not any(_matches(n, name) for n in modules if n):
            top = sorted({n.rsplit(".", 1)[-1] for n in modules if n and not n.split(".")[-1].isdigit()})
            raise ConfigError(
                f"method.modules_to_save: {name!r} matches no module of this model; module names: {', '.join(top)}"
            )


def _matches(module_name: str, key: str) -> bool:
    # PEFT's rule for a list of names: the full name, or its last dotted components
    return module_name == key or module_name.endswith("." + key)
