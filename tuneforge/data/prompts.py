"""Step 4 of a run for the RL stages (grpo, ppo, distill with sequence-level teacher answers): sources ->
prompt samples -> mix -> split -> render -> cache.

The data is what the SFT path reads (alpaca, sharegpt, openai, a dataset registry entry) with the
answer optional: a row's conversation is cut before its last assistant turn, which becomes the
reference ``answer`` reward functions compare against (alpaca's ``output``; or any column named by
the stage's ``answer_column``). Prompts are rendered by `tuneforge.data.render.render_prompt`, the
same chat template and tokenization as SFT, so generation starts from exactly what training saw.

Reused from the SFT pipeline: `sources.load_dataset` (reading, formats, row errors), `pipeline.mix`,
the cache folder and tokenizer fingerprint. Columns of the prepared dataset: ``prompt`` (the rendered
text), ``prompt_ids``, ``question`` (the last user message) and ``answer`` (text or None).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from tuneforge.config.schema import Config, DatasetConfig
from tuneforge.data.cached import DataStats, PreparedData, cache_root, load_cached, write_cache
from tuneforge.data.conversation import Message
from tuneforge.data.dataset_registry import DatasetRegistry
from tuneforge.data.formats.openai import is_missing
from tuneforge.data.pipeline import add_example, mix_and_split, pick_examples, tokenizer_fingerprint
from tuneforge.data.render import render_prompt
from tuneforge.data.sources import load_dataset
from tuneforge.data.templates import Template
from tuneforge.errors import DataError, RowError

PROMPTS_VERSION = "3"  # bump when the prepared prompts for the same input change
# format fields that hold the answer: a prompt-only row may leave them out
ANSWER_FIELDS = frozenset({"output"})
_PLACEHOLDER = "\0no answer\0"
TOO_LONG = "prompt longer than max_length"


@dataclass
class PromptSample:
    """A conversation up to (not including) the answer, plus the reference answer if the row has one."""

    messages: list[Message]
    answer: str | None = None
    tools: list[dict] | None = field(default=None)
    origin: str | None = field(default=None, compare=False, repr=False)  # "FILE line N", set by sources

    def validate(self) -> None:
        users = [m for m in self.messages if m.role == "user"]
        if not users or not users[-1].content.strip():
            raise RowError("empty prompt: the row has no user message to answer")
        if self.messages[-1].role == "assistant":
            raise RowError("bad prompt: it ends with an assistant message, so there is nothing to answer")

    @property
    def question(self) -> str:
        return next(m.content for m in reversed(self.messages) if m.role == "user")


def to_prompt(
    fmt: ModuleType,
    row: dict,
    columns: dict[str, str],
    tags: dict[str, str],
    answer_column: str | None = None,
) -> PromptSample:
    """One row -> PromptSample with its format's converter; the last assistant turn becomes the answer."""
    placeholder = False
    for name in ANSWER_FIELDS & set(columns):
        value = row.get(columns[name])
        if is_missing(value) or (isinstance(value, str) and not value.strip()):
            row, placeholder = {**row, columns[name]: _PLACEHOLDER}, True
    conv = fmt.convert(row, columns, tags)
    messages = list(conv.messages)
    answer = None
    if messages and messages[-1].role == "assistant":
        last = messages.pop()
        answer = None if placeholder else last.content
    if answer_column is not None:
        value = row.get(answer_column)
        answer = None if is_missing(value) or str(value).strip() == "" else str(value).strip()
    return PromptSample(messages, answer, conv.tools)


def prepare_prompts(
    cfg: Config, tokenizer, template: Template, answer_column: str | None = None
) -> PreparedData:
    """Prompt datasets for generation-based stages, cached like `pipeline.prepare_data`."""
    import datasets

    d = cfg.data

    def load(specs: list[DatasetConfig], section: str):
        registry = DatasetRegistry.from_file(d.dataset_registry) if d.dataset_registry else None
        return [
            load_dataset(
                spec,
                index=i,
                registry=registry,
                sample_kind="conversation",
                section=section,
                convert=lambda fmt, row, cols, tags: to_prompt(fmt, row, cols, tags, answer_column),
                optional_fields=ANSWER_FIELDS,
            )
            for i, spec in enumerate(specs)
        ]

    if not d.datasets:
        raise DataError("data.datasets is empty: add at least one dataset of prompts (path: FILE)")
    loaded = list(zip(load(d.datasets, "data.datasets"), [s.weight for s in d.datasets], strict=True))
    eval_loaded = load(d.eval_datasets, "data.eval_datasets") if d.eval_datasets else []
    key = _key(cfg, loaded, eval_loaded, tokenizer, template, answer_column)
    folder = cache_root(cfg) / key
    cached = load_cached(folder, key)
    if cached is not None:
        return cached
    samples, eval_samples, dropped = mix_and_split(cfg, loaded, eval_loaded, "prompts")

    examples = [e for ds, _ in loaded for e in ds.dropped_examples]
    train, stats = _render(samples, tokenizer, template, d.max_length, dropped, examples)
    stats.dropped_examples = pick_examples(examples)
    if not train:
        reasons = ", ".join(f"{r} x{n}" for r, n in dropped.most_common()) or "no rows"
        raise DataError(f"data.datasets: no usable prompts ({reasons}); check data.max_length and the data")
    ev, _ = _render(eval_samples, tokenizer, template, d.max_length, Counter(), [])
    stats.eval_samples = len(ev)
    stats.sources = [ds.label for ds, _ in loaded]
    train_ds = datasets.Dataset.from_list(train)
    ev_ds = datasets.Dataset.from_list(ev) if ev else None
    write_cache(folder, train_ds, ev_ds, stats)
    return PreparedData(train_ds, ev_ds, stats, key, cache_hit=False)


def _render(
    samples: list[Any],
    tokenizer,
    template: Template,
    max_length: int,
    dropped: Counter[str],
    examples: list[tuple[str, str]],
) -> tuple[list[dict], DataStats]:
    """Rendered prompt rows and their stats; drops are counted in ``dropped`` and added to ``examples``."""
    rows: list[dict] = []
    for s in samples:
        try:
            ids = render_prompt(s.messages, tokenizer, template, s.tools)
        except DataError as e:
            raise DataError(f"{s.origin}: {e}" if s.origin else str(e)) from None
        if len(ids) > max_length:
            dropped[TOO_LONG] += 1
            add_example(
                examples, TOO_LONG, f"{s.origin}: {TOO_LONG} ({len(ids)} tokens; max_length {max_length})"
            )
            continue
        text = tokenizer.decode(ids, skip_special_tokens=False)
        messages = [{"role": m.role, "content": m.content} for m in s.messages]
        rows.append(
            {
                "prompt": text,
                "prompt_ids": ids,
                "question": s.question,
                "answer": s.answer,
                "messages": messages,
            }
        )
    lengths = [len(r["prompt_ids"]) for r in rows]
    stats = DataStats(
        samples=len(rows), tokens=sum(lengths), lengths=lengths, dropped=dict(dropped), prompts_only=True
    )
    return rows, stats


def _key(cfg: Config, loaded, eval_loaded, tokenizer, template: Template, answer_column: str | None) -> str:
    d = cfg.data
    parts = {
        "prompts": PROMPTS_VERSION,
        "sources": [(ds.fingerprint, w) for ds, w in loaded],
        "eval_sources": [ds.fingerprint for ds in eval_loaded],
        "template": template.jinja,
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "opts": [d.max_length, d.eval_split, d.max_samples, d.seed, answer_column],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]
