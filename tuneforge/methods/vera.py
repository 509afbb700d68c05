"""`vera`: vector-based random matrix adaptation (Kopiczko et al. 2024, https://arxiv.org/abs/2310.11454).
One pair of random low-rank matrices, frozen and shared by every adapted layer; each layer trains
only two scaling vectors (lambda_d, r entries; lambda_b, out_features entries), so far fewer
parameters train than with LoRA at the same rank.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.methods._base import no_load_kwargs
from tuneforge.methods._lora_common import TargetFields, apply_peft

DESCRIPTION = "VeRA: frozen shared random matrices, each layer trains two scaling vectors only."
SUPPORTS = {"quantized_base": False, "merge": True, "multi_adapter": True}


class Config(TargetFields):
    name: Literal["vera"] = "vera"
    r: int = Field(
        256, gt=0, description="Rank of the shared random matrices (VeRA uses larger r than LoRA)."
    )
    vera_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the adapter's input (0 <= x < 1).")
    d_initial: float = Field(0.1, gt=0, description="Initial value of every lambda_d entry.")
    projection_prng_key: int = Field(
        0, description="Seed of the shared random matrices; adapters loaded together must share it."
    )
    save_projection: bool = Field(
        True, description="Save the random matrices with the adapter (safe across torch versions)."
    )


load_kwargs = no_load_kwargs


def apply(model, cfg: Config):
    from peft import VeraConfig

    config = VeraConfig(
        task_type="CAUSAL_LM",
        r=cfg.r,
        target_modules=cfg.target_modules,
        modules_to_save=cfg.modules_to_save or None,
        vera_dropout=cfg.vera_dropout,
        d_initial=cfg.d_initial,
        projection_prng_key=cfg.projection_prng_key,
        save_projection=cfg.save_projection,
    )
    return apply_peft(model, cfg, config)
