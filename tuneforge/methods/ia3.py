"""`ia3`: (IA)^3, infused adapter by inhibiting and amplifying inner activations (Liu et al. 2022,
https://arxiv.org/abs/2205.05638). Each targeted layer gets one learned vector that rescales its
output (attention keys and values) or, for feed-forward layers, its input. The fewest trained
parameters of the weight methods; merges into the base exactly like LoRA.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tuneforge.methods._base import MethodConfig, no_load_kwargs
from tuneforge.methods._lora_common import apply_peft

DESCRIPTION = "IA3: one learned scaling vector per targeted layer (keys, values, feed-forward input)."
SUPPORTS = {"quantized_base": False, "merge": True, "multi_adapter": True}


class Config(MethodConfig):
    name: Literal["ia3"] = "ia3"
    target_modules: list[str] | None = Field(
        None,
        description="Layers to rescale; none: PEFT's default for the architecture (Llama: k_proj, v_proj, "
        "down_proj; Qwen2: q_proj, v_proj, down_proj).",
    )
    feedforward_modules: list[str] | None = Field(
        None,
        description="Which of target_modules are feed-forward layers (their input is rescaled, not their "
        "output); none: PEFT's default (down_proj). Must be a subset of target_modules.",
    )
    modules_to_save: list[str] = Field(
        default_factory=list, description="Modules trained in full and saved with the adapter."
    )

    @model_validator(mode="after")
    def _feedforward_within_targets(self):
        if self.target_modules is not None and not self.target_modules:
            raise ValueError("target_modules: give at least one module name, or leave it out for the default")
        if self.feedforward_modules and self.target_modules is not None:
            extra = [m for m in self.feedforward_modules if m not in self.target_modules]
            if extra:
                raise ValueError(
                    f"feedforward_modules {extra} are not in target_modules {self.target_modules}; "
                    "add them to target_modules"
                )
        if self.feedforward_modules is not None and self.target_modules is None:
            raise ValueError("feedforward_modules needs target_modules too (it must be a subset of them)")
        return self


load_kwargs = no_load_kwargs


def apply(model, cfg: Config):
    from peft import IA3Config

    config = IA3Config(
        task_type="CAUSAL_LM",
        target_modules=cfg.target_modules,
        # named targets without feed-forward layers mean none, not PEFT's default (which may not be a target)
        feedforward_modules=(cfg.feedforward_modules or []) if cfg.target_modules is not None else None,
        modules_to_save=cfg.modules_to_save or None,
    )
    return apply_peft(model, cfg, config)
