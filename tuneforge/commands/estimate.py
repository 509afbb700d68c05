"""`tuneforge estimate CONFIG.yaml [key=value ...]`: predicted peak memory and tokens/s of a training
run, before any weight is loaded (reads the model's config.json, prepares or reads the cached data,
times this machine's matmuls for two seconds). See tuneforge.speed.estimate for the model."""

from __future__ import annotations

import argparse

HELP = "predict peak memory and tokens/s of a training run before loading weights"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="YAML config file")
    p.add_argument("overrides", nargs="*", help="key=value overrides")


def run(args: argparse.Namespace) -> int:
    from transformers import AutoConfig

    from tuneforge.config import load_config
    from tuneforge.data.pipeline import prepare_data
    from tuneforge.data.templates import resolve_template
    from tuneforge.models.load import load_tokenizer, resolve_model_source
    from tuneforge.speed.estimate import estimate
    from tuneforge.stages import STAGES

    cfg = load_config(args.config, args.overrides)
    stage = STAGES.get(cfg.stage.name)
    tokenizer = load_tokenizer(cfg.model)
    template = resolve_template(cfg.data.template, tokenizer) if stage.SAMPLE_KIND == "conversation" else None
    data = prepare_data(cfg, tokenizer, template, stage.SAMPLE_KIND)
    model_config = AutoConfig.from_pretrained(
        resolve_model_source(cfg.model), trust_remote_code=cfg.model.trust_remote_code
    )
    e = estimate(cfg, model_config, data.stats.lengths, data.stats.trained_share)
    print(f"model: {e.params / 1e6:.1f} M parameters, {e.trainable / 1e6:.2f} M trained ({cfg.method.name})")
    print(f"data: {data.stats.samples} samples, longest {max(data.stats.lengths)} tokens")
    print(f"peak memory (first step, longest batch): {e.peak_mb / 1024:.2f} GiB")
    for part, mb in e.parts_mb.items():
        print(f"  {part:<20} {mb:>9.0f} MiB")
    print(
        f"speed: {e.tokens_per_s:.0f} trained tokens/s (matmul peak here now: {e.matmul_gflops:.1f} GFLOP/s)"
    )
    steps = cfg.train.max_steps if cfg.train.max_steps > 0 else None
    if steps:
        minutes = steps * cfg.train.gradient_accumulation_steps * e.tokens_per_step / e.tokens_per_s / 60
        print(f"time for {steps} steps: about {minutes:.0f} min")
    return 0
