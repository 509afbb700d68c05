"""What the preference stages (rm, dpo, kto, orpo, simpo) share: their fields under TRL's names, the
trainer arguments from the run context, and the reference model (the trainer mixin is in `tuneforge.stages._mixin`, imported only to train).

Step 6 of a run. The data arrive pre-tokenized by `tuneforge.data.kinds` (prompt_ids, chosen_ids,
rejected_ids; or prompt_ids, completion_ids, label for KTO): each stage replaces the TRL trainer's
own dataset tokenization with a step that only checks those columns (and, for KTO, pairs the
mismatched completions it needs), so TRL never tokenizes text again.

TRL's config = `tuneforge.training.arguments.trl_arguments`: every TrainingArguments field built
from `train:` + the stage's own fields under their TRL names (tested field by field).
"""

from __future__ import annotations

import copy
from typing import Any

from tuneforge.errors import ConfigError


def stage_fields(cfg, exclude: set[str] = frozenset()) -> dict[str, Any]:
    """Our stage config's fields under their TRL names (they are the same names)."""
    return cfg.model_dump(exclude={"name", *exclude})


def reference_model(model):
    """The frozen reference for DPO/KTO. None when the policy is a PEFT model: TRL then disables the
    adapter to get the reference, so no second copy of the weights is kept."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        return None
    ref = copy.deepcopy(model).eval()
    ref.requires_grad_(False)
    return ref


def check_columns(dataset, columns: tuple[str, ...], stage: str):
    """The pre-tokenized columns a stage needs; anything else means the wrong sample kind reached it."""
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        raise ConfigError(
            f"stage {stage} needs pre-tokenized {', '.join(missing)} columns, which the data does not have "
            f"(it has {', '.join(dataset.column_names)}); this is a bug in the data path, please report it"
        )
    return dataset


def trainer_kwargs(ctx, **overrides: Any) -> dict[str, Any]:
    """The arguments every preference trainer gets from the run context (``overrides`` win)."""
    return {
        "model": ctx.model,
        "train_dataset": ctx.train_dataset,
        "eval_dataset": ctx.eval_dataset,
        "processing_class": ctx.tokenizer,
        "callbacks": ctx.callbacks,
        "optimizer_factory": ctx.optimizer_factory,
        "speed": ctx.speed,
        **overrides,
    }


def experimental_trl(package: str) -> tuple[type, type]:
    """(Config, Trainer) of a trainer in TRL's experimental package (orpo, cpo), without its warning
    that the experimental API may change (our use is pinned by tests)."""
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = importlib.import_module(f"trl.experimental.{package}")
    name = package.upper()
    return getattr(module, f"{name}Config"), getattr(module, f"{name}Trainer")
