"""`scale.engine`: the engine configs for several processes, generated from `scale:` and
handed to transformers' TrainingArguments (which hands them to accelerate):

- ``ddp``: replicas, gradients all-reduced (NCCL on GPUs, gloo on CPUs); nothing to configure.
- ``fsdp2``: torch's fully_shard over each decoder layer (the model's ``_no_split_modules``),
  full state dict on save so the run folder holds one normal checkpoint; ``scale.offload``
  keeps parameters and gradients in CPU memory. GPUs only: refused over several CPU processes,
  where accelerate would silently run DDP instead.
- ``zero2`` / ``zero3``: DeepSpeed ZeRO (optimizer state + gradients, plus parameters for 3),
  ``scale.offload`` moving optimizer state (and zero3 parameters) to CPU. Sizes are "auto",
  filled in by transformers from TrainingArguments, so batch and accumulation have one source.
  The config is also written to the run folder as deepspeed.json for reference.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from tuneforge.errors import ConfigError


def deepspeed_config(stage: int, offload: bool) -> dict:
    """A ZeRO-2/3 config in DeepSpeed's JSON schema, sizes left to transformers ("auto")."""
    zero: dict = {
        "stage": stage,
        "overlap_comm": True,
        "contiguous_gradients": True,
        "reduce_bucket_size": "auto",
    }
    if offload:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if stage == 3:
        zero.update(
            {
                "stage3_prefetch_bucket_size": "auto",
                "stage3_param_persistence_threshold": "auto",
                "stage3_gather_16bit_weights_on_model_save": True,  # save_pretrained gets full weights
            }
        )
        if offload:
            zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    return {
        "zero_optimization": zero,
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto"},
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
    }


def fsdp2_config(offload: bool, gradient_checkpointing: bool) -> dict:
    """TrainingArguments.fsdp_config for FSDP2 (transformers 5 keys)."""
    return {
        "version": 2,
        "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
        "reshard_after_forward": True,
        "state_dict_type": "FULL_STATE_DICT",
        "cpu_offload": offload,
        # FSDP's own checkpointing; the Trainer's would add an all-gather in backward
        "activation_checkpointing": gradient_checkpointing,
    }


def check_engine(scale_cfg, processes: int) -> None:
    """Refuse an engine that would not run as configured: accelerate wraps the model in DDP instead
    of FSDP when there is no GPU, so fsdp2 over several CPU processes would replicate, not shard."""
    import torch

    if scale_cfg.engine == "fsdp2" and processes > 1 and not torch.cuda.is_available():
        raise ConfigError(
            "scale.engine=fsdp2 needs GPUs: on CPU accelerate runs DDP instead of sharding; "
            "use scale.engine=ddp here (or zero2 / zero3 with DeepSpeed)"
        )


def engine_training_arguments(scale_cfg, gradient_checkpointing: bool, run_dir: Path) -> dict:
    """The TrainingArguments entries for ``scale.engine`` (empty for ddp)."""
    import os

    check_engine(scale_cfg, int(os.environ.get("WORLD_SIZE", "1")))
    name, offload = scale_cfg.engine, scale_cfg.offload
    if name == "ddp":
        if offload:
            raise ConfigError("scale.offload needs scale.engine=fsdp2, zero2 or zero3")
        return {}
    if name == "fsdp2":
        return {
            "fsdp": "full_shard" + (" offload" if offload else ""),
            "fsdp_config": fsdp2_config(offload, gradient_checkpointing),
            "gradient_checkpointing": False,
        }
    if importlib.util.find_spec("deepspeed") is None:
        raise ConfigError(f"scale.engine={name} needs DeepSpeed: pip install deepspeed (or use fsdp2)")
    config = deepspeed_config(int(name[-1]), offload)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "deepspeed.json").write_text(json.dumps(config, indent=2))
    return {"deepspeed": config}
