"""`lora_drop`: keep LoRA only where it matters (Zhou et al. 2024, LoRA-drop,
https://arxiv.org/abs/2402.07721).

LoRA goes on every target layer and trains for ``probe_steps`` steps. Over the second half of
those steps a forward hook measures each LoRA module's output contribution: the mean squared norm
of ``scale * B @ A @ x`` per token on the training batches (the paper's importance ``||ΔW x||²``).
The modules are ranked by it; the fewest whose summed importance reaches ``keep_ratio`` of the
total keep training, the others are dropped: ``B`` set to zero (they add nothing) and frozen.
The ranking is written to ``RUN_DIR/lora_drop.json``. The saved PEFT adapter still holds the
dropped modules, as zeros, so it loads and merges like any LoRA adapter.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field
from transformers import TrainerCallback

from tuneforge.methods._base import no_load_kwargs
from tuneforge.methods._lora_common import LoraFields, apply_lora

log = logging.getLogger(__name__)

DESCRIPTION = "LoRA-drop: train LoRA briefly, keep the modules with the largest output contribution."
SUPPORTS = {"quantized_base": False, "merge": True, "multi_adapter": False}


class Config(LoraFields):
    name: Literal["lora_drop"] = "lora_drop"
    probe_steps: int = Field(
        10, gt=0, description="Steps every LoRA module trains before the selection (at least 2 to measure)."
    )
    keep_ratio: float = Field(
        0.9,
        gt=0,
        le=1,
        description="Share of the total measured importance the kept modules cover (the paper's threshold; "
        "1.0 keeps every module that contributed anything).",
    )


load_kwargs = no_load_kwargs


def apply(model, cfg: Config):
    return apply_lora(model, cfg)


def _select(importance: dict[str, float], keep_ratio: float) -> list[str]:
    """The fewest names, most important first, whose importance sums to ``keep_ratio`` of the total."""
    total = sum(importance.values())
    kept, covered = [], 0.0
    for name, value in sorted(importance.items(), key=lambda kv: -kv[1]):
        if covered >= keep_ratio * total and kept:
            break
        kept.append(name)
        covered += value
    return kept


class _LoraDropCallback(TrainerCallback):
    def __init__(self, cfg: Config, model):
        self.cfg = cfg
        self.model = model
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.handles: list = []
        self.measuring = False

    def _layers(self) -> dict:
        from peft.tuners.lora import LoraLayer

        return {n: m for n, m in self.model.named_modules() if isinstance(m, LoraLayer) and m.lora_A}

    def on_train_begin(self, args, state, control, **kwargs):
        if state.max_steps <= self.cfg.probe_steps:
            log.warning(
                "lora_drop: the run has %d steps, not more than probe_steps=%d, so no module is dropped",
                state.max_steps,
                self.cfg.probe_steps,
            )
        for name, layer in self._layers().items():
            for adapter in layer.active_adapters:
                scale = layer.scaling[adapter]
                self.handles.append(layer.lora_B[adapter].register_forward_hook(self._measure(name, scale)))

    def _measure(self, name: str, scale: float):
        def hook(module, args, output):
            if self.measuring and module.training:
                with torch.no_grad():
                    value = (output.float() * scale).pow(2).sum(-1).mean().item()
                self.sums[name] = self.sums.get(name, 0.0) + value
                self.counts[name] = self.counts.get(name, 0) + 1

        return hook

    def on_step_begin(self, args, state, control, **kwargs):
        self.measuring = self.cfg.probe_steps // 2 <= state.global_step < self.cfg.probe_steps

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step != self.cfg.probe_steps:
            return
        self.measuring = False
        for h in self.handles:
            h.remove()
        importance = {n: self.sums[n] / self.counts[n] for n in self.sums}
        kept = set(_select(importance, self.cfg.keep_ratio))
        layers = self._layers()
        for name, layer in layers.items():
            if name in kept:
                continue
            for adapter in layer.active_adapters:
                with torch.no_grad():
                    layer.lora_B[adapter].weight.zero_()
                layer.lora_A[adapter].weight.requires_grad_(False)
                layer.lora_B[adapter].weight.requires_grad_(False)
        log.info(
            "lora_drop: kept %d of %d LoRA modules at step %d", len(kept), len(layers), state.global_step
        )
        report = {
            "step": state.global_step,
            "keep_ratio": self.cfg.keep_ratio,
            "kept": sorted(kept),
            "importance": dict(sorted(importance.items(), key=lambda kv: -kv[1])),
        }
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        (Path(args.output_dir) / "lora_drop.json").write_text(json.dumps(report, indent=2), encoding="utf-8")


def callbacks(cfg: Config, model) -> list:
    return [_LoraDropCallback(cfg, model)]
