"""Step 6 of a run: our config mapped onto Hugging Face's TrainingArguments and TRL's configs.

`training_arguments` is the one place `train:` reaches transformers, field by field (a test checks
every field's value exactly); `trl_arguments` copies those arguments into a TRL config class with the
stage's own fields on top, so TRL's different defaults (a learning rate of 1e-6, gradient
checkpointing on) never apply silently.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from transformers import TrainingArguments

from tuneforge.config.schema import Config
from tuneforge.errors import ConfigError


def training_arguments(cfg: Config, run_dir: Path, has_eval: bool) -> TrainingArguments:
    """`train:` -> TrainingArguments, plus the method's own fields (`method_training_arguments`, e.g. an
    optimizer name, which win) and the scale engine's (`scale.engine`)."""
    from tuneforge.methods import method_training_arguments
    from tuneforge.scale.engines import engine_training_arguments

    t = cfg.train
    fields: dict[str, Any] = {
        "learning_rate": t.learning_rate,
        "num_train_epochs": t.num_train_epochs,
        "max_steps": t.max_steps,
        "per_device_train_batch_size": t.per_device_train_batch_size,
        "per_device_eval_batch_size": t.per_device_eval_batch_size,
        "gradient_accumulation_steps": t.gradient_accumulation_steps,
        "lr_scheduler_type": t.lr_scheduler_type,
        # transformers 5 folded warmup_ratio into warmup_steps (a float below 1 is a ratio)
        "warmup_steps": t.warmup_steps or t.warmup_ratio,
        "weight_decay": t.weight_decay,
        "max_grad_norm": t.max_grad_norm,
        "optim": t.optim,
        "seed": t.seed,
        "logging_steps": t.logging_steps,
        "save_steps": t.save_steps,
        "save_total_limit": t.save_total_limit,
        "eval_steps": t.eval_steps or t.save_steps,
        "bf16": t.bf16,
        "fp16": t.fp16,
        "gradient_checkpointing": t.gradient_checkpointing,
        "gradient_checkpointing_kwargs": t.gradient_checkpointing_kwargs,
        "report_to": [r for r in t.report_to if r != "none"] or "none",
        "dataloader_num_workers": t.dataloader_num_workers,
        "neftune_noise_alpha": t.neftune_noise_alpha,
        "torch_compile": t.torch_compile,
        "use_liger_kernel": t.use_liger_kernel,
        "metric_for_best_model": t.metric_for_best_model,
        "greater_is_better": t.greater_is_better,
        "load_best_model_at_end": t.load_best_model_at_end,
        # resume_from_checkpoint and allow_changed_resume are read by tuneforge.train
        "output_dir": str(run_dir),
        "eval_strategy": "steps" if has_eval else "no",
        "save_strategy": "steps",
        "logging_first_step": True,
        "remove_unused_columns": False,
        "use_cpu": not _has_accelerator(),
        "disable_tqdm": False,
        # counted for the manifest's tokens/s (a sum over the attention mask per batch: cheap)
        "include_num_input_tokens_seen": "non_padding",
    }
    fields.update(method_training_arguments(cfg.method))
    fields.update(engine_training_arguments(cfg.scale, t.gradient_checkpointing, run_dir))
    for old, new in _RENAMED.items():  # the old names warn in the transformers that have the new ones
        if old in fields and new in _FIELDS:
            fields[new] = fields.pop(old)
    try:
        return TrainingArguments(**fields)
    except ValueError as e:  # a combination transformers refuses (its message names the fields)
        raise ConfigError(f"train: {str(e).strip().splitlines()[0]}") from None


_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainingArguments))
# TrainingArguments names transformers renamed: ours (the Hugging Face names users know) -> theirs
_RENAMED = {
    "gradient_checkpointing": "activation_checkpointing",
    "gradient_checkpointing_kwargs": "activation_checkpointing_kwargs",
}

# `train:` fields that are not TrainingArguments fields (read by tuneforge.train; num_threads by the
# process start, tuneforge.threads)
NOT_TRAINING_ARGUMENTS = frozenset(
    {"resume_from_checkpoint", "allow_changed_resume", "warmup_ratio", "num_threads"}
)


def trl_arguments(config_cls: type, training_args: TrainingArguments, **fields: Any) -> Any:
    """``config_cls`` (a TRL config, a TrainingArguments subclass) with every TrainingArguments field
    taken from ``training_args`` and the stage's ``fields`` on top."""
    base = {
        f.name: getattr(training_args, f.name)
        for f in dataclasses.fields(TrainingArguments)
        if f.init and hasattr(training_args, f.name)
    }
    # TrainingArguments normalises report_to in __post_init__; give back what it was built from
    base["report_to"] = list(training_args.report_to) or "none"
    unknown = set(fields) - {f.name for f in dataclasses.fields(config_cls)}
    assert not unknown, f"{config_cls.__name__} has no fields {unknown}"  # a bug in the stage's mapping
    return config_cls(**{**base, **fields})


def _has_accelerator() -> bool:
    import torch

    return torch.cuda.is_available()
