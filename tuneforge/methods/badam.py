"""`badam`: full fine-tuning one block at a time (Luo et al. 2024, BAdam,
https://arxiv.org/abs/2404.02827). The decoder layers (optionally also the embeddings and the
head) are blocks; only the active block trains and holds Adam state, and every
`switch_block_every` optimizer steps the next one takes over, in `switch_mode` order. Memory is
that of training one layer; the run saves the whole model.

The optimizer is the `badam` package's ``BlockOptimizer`` around AdamW, built through the
``create_optimizer`` method hook. ``apply`` marks the starting block trainable so the logged
trainable share is what trains in a step. The block position is saved with the optimizer state,
so a resumed run continues with the block it stopped in (the package alone restarts at block 0),
and every block gets exactly K steps (the package gives the first one K - 1).
"""

from __future__ import annotations

import logging
import warnings
from typing import Literal

from pydantic import Field
from torch import nn

from tuneforge.errors import ConfigError
from tuneforge.methods._base import MethodConfig, no_load_kwargs

log = logging.getLogger(__name__)

DESCRIPTION = "BAdam: full fine-tuning one decoder layer at a time, switching every K steps."
SUPPORTS = {"quantized_base": False, "merge": False, "multi_adapter": False}


class Config(MethodConfig):
    name: Literal["badam"] = "badam"
    switch_block_every: int = Field(
        50, gt=0, description="Optimizer steps before the next block becomes the trainable one (K)."
    )
    switch_mode: Literal["ascending", "descending", "random", "fixed"] = Field(
        "ascending",
        description="Block order: ascending (first layer first), descending, random (a new permutation "
        "each round, seeded by train.seed), or fixed (always start_block).",
    )
    start_block: int | None = Field(
        None, ge=0, description="Index of the first active block (default: by switch_mode)."
    )
    include_embeddings: bool = Field(False, description="Also make the input embeddings a block.")
    include_lm_head: bool = Field(
        False, description="Also make the output head and the remaining parameters (final norm) a block."
    )


load_kwargs = no_load_kwargs


def _blocks(model: nn.Module, cfg: Config) -> list[list[str]]:
    """The parameter-name prefixes of each block, as BAdam infers them (one per decoder layer...)."""
    from badam import BlockOptimizer

    names = [n for n, _ in model.named_parameters()]
    found = BlockOptimizer.infer_param_groups(None, names, cfg.include_embeddings, cfg.include_lm_head)
    if not found:
        raise ConfigError(
            f"method 'badam' found no decoder layers ('layers.N.' in parameter names) in {type(model).__name__}"
        )
    return found


def _start_index(cfg: Config, count: int) -> int | None:
    """The block the optimizer starts with (None: random, drawn by the optimizer)."""
    if cfg.start_block is not None:
        if cfg.start_block >= count:
            raise ConfigError(f"method.start_block={cfg.start_block} but the model has {count} blocks")
        return cfg.start_block
    return {"ascending": 0, "descending": count - 1, "fixed": 0}.get(cfg.switch_mode)


def apply(model, cfg: Config):
    from tuneforge.extras import require

    require("method 'badam'", "badam")
    found = _blocks(model, cfg)
    start = _start_index(cfg, len(found))
    active = found[start if start is not None else 0]
    for n, p in model.named_parameters():
        p.requires_grad_(any(prefix in n for prefix in active))
    return model


def create_optimizer(model, cfg: Config, args):
    """BAdam's BlockOptimizer around AdamW with the run's learning rate, betas and weight decay."""
    import torch

    optimizer_cls = _resumable_block_optimizer()
    params = list(model.parameters())
    base = torch.optim.AdamW(
        params,
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        weight_decay=args.weight_decay,
    )
    found = _blocks(model, cfg)
    with warnings.catch_warnings():
        # BAdam warns about float32 weights (it expects a half-precision model with float32 copies)
        warnings.filterwarnings("ignore", message="BAdam expect model")
        return optimizer_cls(
            base_optimizer=base,
            named_parameters_list=list(model.named_parameters()),
            block_prefix_list=found,
            switch_block_every=cfg.switch_block_every,
            start_block=_start_index(cfg, len(found)),
            switch_mode=cfg.switch_mode,
            verbose=0,
        )


def _resumable_block_optimizer():
    from badam import BlockOptimizer

    class ResumableBlockOptimizer(BlockOptimizer):
        """BlockOptimizer whose state dict also holds its position (step, active block, order)."""

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            # the package binds state_dict to the base optimizer's; ours adds the position
            self.state_dict = self._state_dict_with_position

        def step(self, *args, **kwargs) -> None:
            if self.ds_zero3_enabled:
                return super().step(*args, **kwargs)
            self.step_single_gpu(*args, **kwargs)
            # the package tests (global_step + 1) here, which gives the first block K - 1 steps
            if self.global_step % self.switch_block_every == 0:
                self.switch_trainable_params()

        def switch_trainable_params(self, verbose=0) -> None:
            self._active = self.current_block_idx
            super().switch_trainable_params(verbose=0)
            log.info("badam: block %d of %d now trains", self._active, self.block_num)

        def _state_dict_with_position(self) -> dict:
            state = self.base_optimizer.state_dict()
            state["badam"] = {
                "global_step": self.global_step,
                "active_block": self._active,
                "block_order": list(getattr(self, "block_order", [])),
            }
            return state

        def load_state_dict(self, state_dict: dict) -> None:
            state_dict = dict(state_dict)
            position = state_dict.pop("badam", None)
            if position is not None:
                self.global_step = position["global_step"]
                if self.switch_mode == "random":
                    self.block_order = list(position["block_order"])
                self.current_block_idx = position["active_block"]
                self.switch_trainable_params()
            self.base_optimizer.load_state_dict(state_dict)

    return ResumableBlockOptimizer


def callbacks(cfg: Config, model) -> list:
    # gradient checkpointing with frozen embeddings: BAdam's callback re-enables input grads per block
    from badam import BAdamCallback

    return [BAdamCallback()]
