"""One reward per completion from the rewards `tuneforge.rewards.build.build_rewards` made, for a stage that runs
its own loop (`ppo`). `grpo` hands the same functions to TRL's GRPOTrainer, which combines them the same
way; this module keeps the two stages' rewards, and their names in the logs, equal:

- a Python reward (built-in, user file, judge; already wrapped by `guard`) is called with ``prompts``,
  ``completions``, ``completion_ids`` and the prompt data's columns as keyword arguments; None means
  "does not apply" and leaves that function out of the sum for that completion;
- a reward model scores the rendered prompt + the completion, tokenized by its own tokenizer;
- the total is the weighted sum over the functions that apply (0 when none does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch


def reward_name(func: Callable | torch.nn.Module) -> str:
    """The name in ``rewards/<name>/mean``: a model's folder name, else the function's name (as TRL names them)."""
    if isinstance(func, torch.nn.Module):
        return str(func.config._name_or_path).rstrip("/").split("/")[-1]
    return getattr(func, "__name__", type(func).__name__)


def score_completions(
    funcs: Sequence[Callable | torch.nn.Module],
    processors: Sequence[Any],
    weights: Sequence[float],
    prompts: list[str],
    completions: list[str],
    completion_ids: list[list[int]],
    columns: dict[str, list],
) -> tuple[torch.Tensor, torch.Tensor]:
    """(total reward per completion [N], each function's reward [N, F] with NaN where it returned None)."""
    n = len(completions)
    per_func = torch.full((n, len(funcs)), float("nan"))
    for i, (func, processor) in enumerate(zip(funcs, processors, strict=True)):
        if isinstance(func, torch.nn.Module):
            per_func[:, i] = _model_scores(func, processor, prompts, completions)
        else:
            out = func(prompts=prompts, completions=completions, completion_ids=completion_ids, **columns)
            per_func[:, i] = torch.tensor([float("nan") if r is None else float(r) for r in out])
    total = (per_func * torch.tensor(weights, dtype=torch.float32)).nansum(dim=1)
    return total, per_func


@torch.inference_mode()
def _model_scores(
    model: torch.nn.Module, tokenizer, prompts: list[str], completions: list[str]
) -> torch.Tensor:
    texts = [p + c for p, c in zip(prompts, completions, strict=True)]
    batch = tokenizer(
        text=texts, return_tensors="pt", padding=True, padding_side="right", add_special_tokens=False
    )
    device = next(model.parameters()).device
    return model(**batch.to(device)).logits[:, 0].float().cpu()
