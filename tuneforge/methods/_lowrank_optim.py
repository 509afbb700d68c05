"""What `galore` and `apollo` share: full fine-tuning where the optimizer keeps its state in a
low-rank projection of each target weight's gradient. Both are HF Trainer optimizers
(``optim="galore_adamw"`` / ``"apollo_adamw"`` with ``optim_target_modules`` and ``optim_args``),
so these methods only translate their fields into those `TrainingArguments` (the
``training_arguments`` method hook) and check the targets against the model in ``apply``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from torch import nn

from tuneforge.errors import ConfigError
from tuneforge.methods._base import MethodConfig, no_load_kwargs

# `all-linear` for the optimizer means every linear layer but the output head (as for LoRA); HF's
# own "all-linear" includes lm_head, whose (vocab x hidden) SVD would dominate each projection update
ALL_LINEAR_BUT_HEAD = r"(?!lm_head$).+"


class LowRankOptimFields(MethodConfig):
    rank: int = Field(128, gt=0, description="Rank of the gradient projection (optim_args rank).")
    update_proj_gap: int = Field(
        200,
        gt=0,
        description="Recompute the projection every N optimizer steps (optim_args update_proj_gap).",
    )
    target_modules: str | list[str] = Field(
        "all-linear",
        description="Linear layers whose gradients are projected (optim_target_modules): 'all-linear' "
        "(every linear layer but the output head) or names such as [q_proj, v_proj]; other parameters "
        "get plain AdamW.",
    )
    proj_type: Literal["std", "reverse_std", "right", "left", "full"] = Field(
        "std", description="Which side of each gradient is projected (optim_args proj_type)."
    )
    layerwise: bool = Field(
        False,
        description="Update each parameter as soon as its gradient is ready (the *_layerwise optimizer): "
        "less memory, but no gradient accumulation.",
    )

    @field_validator("target_modules")
    @classmethod
    def _non_empty(cls, value):
        if isinstance(value, list) and not value:
            raise ValueError("give at least one module name, or 'all-linear'")
        if isinstance(value, str) and value != "all-linear":
            raise ValueError("give 'all-linear' or a list of module names such as [q_proj, v_proj]")
        return value


def optimizer_arguments(cfg: LowRankOptimFields, optim: str, package: str, **optim_args) -> dict:
    """The `TrainingArguments` fields for an HF low-rank optimizer named ``optim``."""
    from tuneforge.extras import require

    require(f"method {cfg.name!r}", package)
    args = {"rank": cfg.rank, "update_proj_gap": cfg.update_proj_gap, **optim_args}
    targets = ALL_LINEAR_BUT_HEAD if cfg.target_modules == "all-linear" else list(cfg.target_modules)
    return {
        "optim": optim + ("_layerwise" if cfg.layerwise else ""),
        "optim_target_modules": targets,
        "optim_args": ",".join(f"{k}={v}" for k, v in args.items()),
    }


def check_linear_targets(model: nn.Module, cfg: LowRankOptimFields) -> None:
    """Every listed target names (part of) some linear layer, else a ConfigError listing them."""
    if cfg.target_modules == "all-linear":
        return
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    for target in cfg.target_modules:
        if not any(target in n for n in names):
            short = sorted({n.rsplit(".", 1)[-1] for n in names} - {"lm_head"})
            raise ConfigError(
                f"method.target_modules: {target!r} matches no linear layer of this model; its linear "
                f"layers are: {', '.join(short)} (or use 'all-linear')"
            )


load_kwargs = no_load_kwargs


def apply(model: nn.Module, cfg: LowRankOptimFields) -> nn.Module:
    """Every parameter trains (the optimizer is the method); the targets must exist."""
    check_linear_targets(model, cfg)
    for p in model.parameters():
        p.requires_grad_(True)
    return model
