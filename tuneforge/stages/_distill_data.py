"""Data pieces of the `distill` stage (step 4 of a run for ``mode: sequence``; the batch collator for
``mode: token``).

- `prepare_teacher_answers`: prompts (`tuneforge.data.prompts`) -> the teacher writes an answer to each
  (`tuneforge.inference.generate`, greedy, the run's chat template) -> conversations rendered and masked by the
  renderer exactly like SFT data -> cached under a key that includes the teacher and generation settings.
- `prompt_collate`: SFT batches plus the left-padded prompt (every token before the first trained one)
  that GKD's on-policy step generates from.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch

from tuneforge.data.cached import DataStats, PreparedData, cache_root, load_cached, write_cache
from tuneforge.data.conversation import Conversation, Message
from tuneforge.data.pipeline import render_all
from tuneforge.data.render import IGNORE_INDEX, RenderOptions
from tuneforge.data.templates import Template
from tuneforge.errors import DataError

TEACHER_VERSION = "1"


def prepare_teacher_answers(cfg, tokenizer, template: Template, load_teacher: Callable) -> PreparedData:

    from tuneforge.data.prompts import prepare_prompts
    from tuneforge.inference.generate import generate_answers

    prompts = prepare_prompts(cfg, tokenizer, template)
    s, d = cfg.stage, cfg.data
    parts = [TEACHER_VERSION, prompts.fingerprint, s.teacher, _teacher_stamp(s.teacher), s.max_new_tokens]
    parts += [d.max_length, d.train_on_prompt, d.prompt_truncation, template.jinja]
    key = "teacher-" + hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:20]
    folder = cache_root(cfg) / key
    cached = load_cached(folder, key)  # None when absent, or damaged (then removed, with a warning)
    if cached is not None:
        return cached

    teacher = load_teacher()
    opts = RenderOptions(
        max_length=d.max_length, train_on_prompt=d.train_on_prompt, prompt_truncation=d.prompt_truncation
    )
    out, all_stats = [], []
    for split in (prompts.train, prompts.eval):
        if split is None:
            out.append(None)
            continue
        print(f"the teacher is answering {len(split)} prompts...")
        answers = generate_answers(
            teacher,
            tokenizer,
            list(split["messages"]),
            chat_template=template.jinja,
            stop_tokens=template.stop_tokens,
            max_new_tokens=s.max_new_tokens,
        )
        convs = [
            Conversation([Message(m["role"], m["content"]) for m in msgs] + [Message("assistant", a)])
            for msgs, a in zip(split["messages"], answers, strict=True)
        ]
        renders = render_all(convs, tokenizer, template, opts, "tokenizing teacher answers")
        rendered, dropped = renders.rows, renders.dropped
        if split is prompts.train and not rendered:
            reasons = ", ".join(f"{r} x{n}" for r, n in dropped.most_common())
            raise DataError(f"data.datasets: no usable teacher answers ({reasons}); raise data.max_length")
        out.append(renders.dataset() if rendered else None)
        all_stats.append((rendered, dropped))
    rendered, dropped = all_stats[0]
    lengths = [len(r.input_ids) for r in rendered]
    stats = DataStats(
        samples=len(rendered),
        tokens=sum(lengths),
        trained_tokens=sum(sum(1 for x in r.labels if x != IGNORE_INDEX) for r in rendered),
        lengths=lengths,
        dropped=dict(Counter(prompts.stats.dropped) + dropped),
        eval_samples=len(out[1]) if out[1] is not None else 0,
        sources=prompts.stats.sources,
        prompts_shortened=sum(r.prompt_shortened for r in rendered),
    )
    write_cache(folder, out[0], out[1], stats)
    return PreparedData(out[0], out[1], stats, key, cache_hit=False)


def _teacher_stamp(teacher: str) -> list:
    """Names, sizes and times of a local teacher's files, so retraining it in place invalidates the cache."""
    path = Path(teacher).expanduser()
    files = sorted(path.iterdir()) if path.is_dir() else [path] if path.is_file() else []
    return [(f.name, f.stat().st_size, int(f.stat().st_mtime)) for f in files if f.is_file()]


def prompt_collate(pad_token_id: int):
    """`tuneforge.data.collate.pad_collate` plus ``prompts`` / ``prompt_attention_mask``: the tokens before the
    first trained label of each sample, left-padded, for GKD's on-policy generation."""
    from tuneforge.data.collate import pad_collate

    base = pad_collate(pad_token_id)

    def collate(features: list[dict]) -> dict[str, torch.Tensor]:
        batch = base(features)
        heads = []
        for f in features:
            first = next((k for k, x in enumerate(f["labels"]) if x != IGNORE_INDEX), len(f["labels"]))
            heads.append(list(f["input_ids"][: max(first, 1)]))
        longest = max(map(len, heads))
        prompts = torch.full((len(heads), longest), pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(prompts)
        for i, h in enumerate(heads):
            prompts[i, longest - len(h) :] = torch.tensor(h)
            mask[i, longest - len(h) :] = 1
        return {**batch, "prompts": prompts, "prompt_attention_mask": mask}

    return collate
