"""`perplexity`: loss and perplexity of a model on any dataset the data pipeline reads (any format,
file, folder or registry entry), rendered with the target's chat template exactly as training renders
it, so the loss counts the same tokens training would train (assistant turns; every token of a
document)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from tuneforge.eval.tasks._base import TaskConfig, TaskResult

DESCRIPTION = "Loss and perplexity on a dataset (any format the data pipeline reads)."


class Config(TaskConfig):
    name: Literal["perplexity"] = "perplexity"
    path: str | None = Field(None, description="Data file or folder (as data.datasets[].path).")
    dataset: str | None = Field(None, description="An entry of `dataset_registry` instead of a path.")
    dataset_registry: str | None = Field(None, description="A dataset registry file.")
    format: str | None = Field(None, description="Row format (alpaca, sharegpt, openai, text).")
    columns: dict[str, str] = Field(default_factory=dict, description="Column mapping.")
    kind: Literal["conversation", "document"] = Field(
        "conversation",
        description="'conversation': loss on assistant turns (as sft trains); "
        "'document': loss on every token (as pt trains).",
    )
    max_length: int = Field(1024, gt=0, description="Tokens per sample (longer ones are truncated).")

    @model_validator(mode="after")
    def _path_or_dataset(self) -> Config:
        if (self.path is None) == (self.dataset is None):
            raise ValueError(
                "perplexity: give exactly one of `path` (a file or folder) or `dataset` (a registry entry)"
            )
        return self


def run(cfg: Config, target) -> TaskResult:
    from tqdm.auto import tqdm

    from tuneforge.config.schema import DatasetConfig
    from tuneforge.data.dataset_registry import DatasetRegistry
    from tuneforge.data.pipeline import render_all
    from tuneforge.data.render import RenderOptions
    from tuneforge.data.sources import load_dataset
    from tuneforge.errors import DataError
    from tuneforge.eval.loglik import summed_loss

    spec = DatasetConfig(path=cfg.path, name=cfg.dataset, format=cfg.format, columns=cfg.columns)
    registry = DatasetRegistry.from_file(cfg.dataset_registry) if cfg.dataset_registry else None
    section = f"eval task {cfg.key!r}"
    loaded = load_dataset(spec, index=0, registry=registry, sample_kind=cfg.kind, section=section)
    samples = loaded.samples[: cfg.limit] if cfg.limit else loaded.samples
    template = target.template if cfg.kind == "conversation" else None
    if cfg.kind == "conversation" and template is None:
        raise DataError(
            f"{section}: the model has no chat template; use kind: document or a run with a template"
        )
    opts = RenderOptions(max_length=cfg.max_length, train_on_prompt=False, mask_history=False)
    renders = render_all(samples, target.tokenizer, template, opts, f"rendering {cfg.key}")
    dropped = renders.dropped
    rendered = [r for r in renders.rows if any(x != -100 for x in r.labels[1:])]
    if not rendered:
        raise DataError(f"{section}: no sample has a token to score (dropped: {dict(dropped) or 'none'})")
    total, count = 0.0, 0
    pad = target.tokenizer.pad_token_id or 0
    for start in tqdm(
        range(0, len(rendered), cfg.batch_size), desc=f"{cfg.key} ({target.side})", unit="batch"
    ):
        batch = rendered[start : start + cfg.batch_size]
        nll, n = summed_loss(target.model, pad, [r.input_ids for r in batch], [r.labels for r in batch])
        total, count = total + nll, count + n
    loss = total / count
    return TaskResult(
        metrics={"loss": loss, "perplexity": math.exp(min(loss, 50.0))},
        counts={"samples": len(rendered), "tokens": count, "dropped": sum(dropped.values())},
    )
