"""`tuneforge estimate CONFIG.yaml [key=value ...]`: predicted peak memory and tokens/s of a training
run, before any weight is loaded (reads the model's config.json, prepares or reads the cached data,
times this machine's matmuls for two seconds). See tuneforge.speed.estimate for the model."""

from __future__ import annotations

import argparse

from tuneforge.commands._config import add_trust_flag, load_command_config

HELP = "predict peak memory and tokens/s of a training run before loading weights"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="YAML config file")
    p.add_argument("overrides", nargs="*", help="key=value overrides")
    add_trust_flag(p)


def run(args: argparse.Namespace) -> int:
    from transformers import AutoConfig

    from tuneforge.errors import ConfigError
    from tuneforge.models.load import resolve_model_source
    from tuneforge.speed.estimate import estimate
    from tuneforge.training.prepare import prepare

    cfg = load_command_config(args)
    declared = _stage_cost(cfg)
    if declared is None:
        raise ConfigError(
            f"tuneforge estimate cannot estimate stage {cfg.stage.name}"
            + (f" in mode {cfg.stage.mode}" if hasattr(cfg.stage, "mode") else "")
            + ": its steps are mostly generation, whose length depends on the answers; measure two steps "
            "instead (tuneforge train CONFIG train.max_steps=2)"
        )
    run = prepare(cfg, load_weights=False, write_folder=False, quiet=True)
    data = run.data
    model_config = AutoConfig.from_pretrained(
        resolve_model_source(cfg.model), trust_remote_code=cfg.model.trust_remote_code
    )
    e = estimate(
        cfg,
        model_config,
        data.stats.lengths,
        data.stats.trained_share,
        speed=run.speed,
        cost=declared,
        chunked_by=run.support.chunked_cross_entropy,
    )
    print(f"model: {e.params / 1e6:.1f} M parameters, {e.trainable / 1e6:.2f} M trained ({cfg.method.name})")
    print(f"data: {data.stats.samples} samples, longest {max(data.stats.lengths)} tokens ({cfg.stage.name})")
    print(f"peak memory (first step, longest batch): {e.peak_mb / 1024:.2f} GiB")
    for part, mb in e.parts_mb.items():
        print(f"  {part:<20} {mb:>9.0f} MiB")
    print(f"speed: {e.tokens_per_s:.0f} tokens/s (matmul peak here now: {e.matmul_gflops:.1f} GFLOP/s)")
    steps = cfg.train.max_steps if cfg.train.max_steps > 0 else None
    if steps:
        minutes = steps * cfg.train.gradient_accumulation_steps * e.tokens_per_step / e.tokens_per_s / 60
        print(f"time for {steps} steps: about {minutes:.0f} min")
    return 0


def _stage_cost(cfg):
    """The stage's declared cost (`tuneforge.speed.estimate.StageCost`), or None: not estimable."""
    from tuneforge.stages import STAGES

    declared = STAGES.get(cfg.stage.name).COST
    return declared[cfg.stage.mode] if isinstance(declared, dict) else declared
