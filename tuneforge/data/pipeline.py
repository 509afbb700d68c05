"""Step 4 of a run: sources -> samples -> mix -> split -> render -> cache.

``prepare_data`` returns tokenized train/eval sets plus statistics. The result is cached under a
key that hashes everything that changes it (source contents, formats and columns, template,
tokenizer, render options, mixing and split settings), so a second run with the same data skips
loading and tokenisation, and every rank of a distributed run reads the same cache. A damaged cache
(a file missing, cut short or unreadable) is removed with a warning and built again.

``DataStats.dropped_examples`` keeps a few dropped samples, each "FILE line N: reason", so the
counts of dropped samples come with examples to look at; ``DataStats.prompts_shortened`` counts the
samples kept by shortening their prompt (data.prompt_truncation).
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import random
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from tuneforge.config.schema import Config, DatasetConfig
from tuneforge.data.cached import DataStats, PreparedData, cache_root, load_cached, name_sources, write_cache
from tuneforge.data.conversation import Conversation, Document, Sample
from tuneforge.data.dataset_registry import DatasetRegistry
from tuneforge.data.kinds import KindRow, kind_of
from tuneforge.data.render import (
    IGNORE_INDEX,
    DropSample,
    Rendered,
    RenderOptions,
    render_conversation_chunks,
    render_document,
)
from tuneforge.data.sources import MAX_EXAMPLES, load_dataset
from tuneforge.data.templates import Template
from tuneforge.errors import DataError

log = logging.getLogger(__name__)

RENDER_VERSION = "2"  # bump when the renderer's output for the same input changes


def tokenizer_fingerprint(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    extra = json.dumps([tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token], sort_keys=True)
    return hashlib.sha256((text + extra).encode()).hexdigest()[:16]


def load_sources(cfg: Config, specs: list[DatasetConfig], sample_kind: str, what: str):
    registry = DatasetRegistry.from_file(cfg.data.dataset_registry) if cfg.data.dataset_registry else None
    loaded = []
    for i, spec in enumerate(specs):
        loaded.append(load_dataset(spec, index=i, registry=registry, sample_kind=sample_kind, section=what))
    if not loaded:
        raise DataError(f"{what} is empty: add at least one dataset (path: FILE, format: alpaca)")
    return loaded


def mix(loaded, seed: int) -> list[Sample]:
    """Each source contributes round(weight x size) samples: below 1 a random subset, above 1
    whole repeats plus a random remainder. The mixed list is shuffled with `seed`."""
    rng = random.Random(seed)
    out: list[Sample] = []
    for ds, weight in loaded:
        n = round(weight * len(ds.samples))
        whole, rest = divmod(n, len(ds.samples))
        out.extend(ds.samples * whole)
        out.extend(rng.sample(ds.samples, rest))
    rng.shuffle(out)
    return out


@dataclass
class Renders:
    """What `render_all` made: the rows in sample order, why others were dropped, and the token rows
    already in Arrow, one table per chunk."""

    rows: list[Rendered | KindRow]
    dropped: Counter[str]
    tables: list = field(default_factory=list)
    examples: list[tuple[str, str]] = field(default_factory=list)  # (reason, "FILE line N: reason")

    def dataset(self, fingerprint: str | None = None):
        """The rows as a `datasets.Dataset` (input_ids int32, labels int64; a sample kind's own
        columns). A ``fingerprint`` given saves datasets hashing the table (a twentieth of the time
        of rendering 10,000 samples)."""
        import datasets
        import pyarrow as pa

        if self.rows and isinstance(self.rows[0], KindRow):
            return datasets.Dataset.from_list([r.columns for r in self.rows])
        table = pa.concat_tables(self.tables) if self.tables else _arrow_table([])
        return datasets.Dataset(datasets.table.InMemoryTable(table), fingerprint=fingerprint)


def render_all(
    samples: list[Sample], tokenizer, template: Template | None, opts: RenderOptions, desc: str
) -> Renders:
    out = Renders([], Counter())
    # conversations are tokenized in batches of 1,000 (render_conversation_chunks); the first is
    # smaller so the tokenizer starts sooner
    bounds = [0, *range(min(250, len(samples)), len(samples), 1000), len(samples)]
    chunks = [samples[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    conversations = render_conversation_chunks(
        ([s for s in chunk if isinstance(s, Conversation)] for chunk in chunks), tokenizer, template, opts
    )
    bar = tqdm(total=len(samples), desc=desc, unit="sample", disable=len(samples) < 2000, mininterval=1)
    for chunk, done in zip(chunks, conversations, strict=True):
        done = iter(done)
        first, dropped_before = len(out.rows), out.dropped.total()
        for sample in chunk:  # in sample order
            try:
                if isinstance(sample, Document):
                    out.rows.extend(render_document(sample, tokenizer, opts))
                    continue
                if not isinstance(sample, Conversation):  # a sample kind's own shape (data.kinds)
                    out.rows.append(kind_of(sample).render(sample, tokenizer, template, opts))
                    continue
                r = next(done)
                if isinstance(r, DropSample):
                    raise r
                out.rows.append(r)
            except DropSample as e:
                out.dropped[e.reason] += 1
                add_example(out.examples, e.reason, _example(sample, e))
        new = out.rows[first:]
        if new and not isinstance(new[0], KindRow):
            # here rather than at the end: the next chunk is being tokenized meanwhile
            out.tables.append(_arrow_table(new))
        if out.dropped.total() != dropped_before:
            gc.collect(0)  # a dropped sample's exception holds frames in reference cycles
        bar.update(len(chunk))
    bar.close()
    return out


def _example(sample, e: DropSample) -> str:
    text = f"{e.reason} ({e.detail})" if e.detail else e.reason
    origin = getattr(sample, "origin", None)  # samples made in code (teacher answers) have none
    return f"{origin}: {text}" if origin else text


def add_example(examples: list[tuple[str, str]], reason: str, text: str) -> None:
    """Keep a dropped sample as an example while there are few, or when it is the first of its reason."""
    if len(examples) < MAX_EXAMPLES or all(r != reason for r, _ in examples):
        examples.append((reason, text))


def pick_examples(candidates: list[tuple[str, str]], limit: int = MAX_EXAMPLES) -> list[str]:
    """Up to ``limit`` of the (reason, text) dropped samples, in their order: the first of each reason,
    then the next ones."""
    firsts: dict[str, str] = {}
    for reason, text in candidates:
        firsts.setdefault(reason, text)
    texts = list(dict.fromkeys(t for _, t in candidates))  # a sample repeated by mixing counts once
    chosen = set(list(firsts.values())[:limit])
    for text in texts:
        if len(chosen) >= limit:
            break
        chosen.add(text)
    return [t for t in texts if t in chosen]


def _arrow_table(rendered: list[Rendered]):
    """Token rows straight to Arrow with the type known (datasets.Dataset.from_dict infers it row by
    row). Python ints convert to int64 in one fast pass (to int32 directly is slower: a range check
    per element); one vectorised cast then gives the int32 ids datasets stores."""
    import pyarrow as pa

    ids = pa.array([r.input_ids for r in rendered], type=pa.list_(pa.int64())).cast(pa.list_(pa.int32()))
    labels = pa.array([r.labels for r in rendered], type=pa.list_(pa.int64()))
    return pa.Table.from_arrays([ids, labels], names=["input_ids", "labels"])


def _key(cfg: Config, loaded, eval_loaded, tokenizer, template: Template | None, sample_kind: str) -> str:
    d = cfg.data
    parts = {
        "render": RENDER_VERSION,
        "kind": sample_kind,
        "sources": [(ds.fingerprint, w) for ds, w in loaded],
        "eval_sources": [ds.fingerprint for ds in eval_loaded],
        "template": template.jinja if template else None,
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "opts": [
            d.max_length,
            d.train_on_prompt,
            d.mask_history,
            d.prompt_truncation,
            d.eval_split,
            d.max_samples,
            d.seed,
        ],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


@contextmanager
def _cyclic_gc_paused():
    """Loading and rendering make millions of long-lived objects (rows, messages, id lists), and
    Python's cyclic collector would walk all of them again at each full collection, a large share of
    the loading time. It is paused here. Rendering a sample makes no reference cycle;
    dropping one does (its exception keeps the frames that raised it), so `render_all` collects the
    youngest generation after a chunk that dropped samples, which frees them without walking what
    is kept."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def prepare_data(cfg: Config, tokenizer, template: Template | None, sample_kind: str) -> PreparedData:
    with _cyclic_gc_paused():
        return _prepare_data(cfg, tokenizer, template, sample_kind)


def _prepare_data(cfg: Config, tokenizer, template: Template | None, sample_kind: str) -> PreparedData:

    d = cfg.data
    loaded = [
        (ds, spec.weight)
        for ds, spec in zip(
            load_sources(cfg, d.datasets, sample_kind, "data.datasets"), d.datasets, strict=True
        )
    ]
    eval_loaded = (
        load_sources(cfg, d.eval_datasets, sample_kind, "data.eval_datasets") if d.eval_datasets else []
    )
    key = _key(cfg, loaded, eval_loaded, tokenizer, template, sample_kind)
    folder = cache_root(cfg) / key
    cached = load_cached(folder, key)
    if cached is not None:  # the key is the files' content: the same rows may sit at another path now
        name_sources(cached.stats, [ds.label for ds, _ in loaded])
        return cached
    samples, eval_samples, dropped = mix_and_split(cfg, loaded, eval_loaded, "training samples")

    opts = RenderOptions(
        max_length=d.max_length,
        train_on_prompt=d.train_on_prompt,
        mask_history=d.mask_history,
        prompt_truncation=d.prompt_truncation,
    )
    renders = render_all(samples, tokenizer, template, opts, "tokenizing")
    rendered = renders.rows
    dropped.update(renders.dropped)
    if not rendered:
        reasons = ", ".join(f"{r} x{n}" for r, n in dropped.most_common()) or "no rows"
        raise DataError(
            f"data.datasets: no usable samples after filtering ({reasons}); check data.max_length and the data"
        )
    eval_renders = (
        render_all(eval_samples, tokenizer, template, opts, "tokenizing eval") if eval_samples else None
    )
    eval_rendered = eval_renders.rows if eval_renders else []

    lengths = [r.tokens if isinstance(r, KindRow) else len(r.input_ids) for r in rendered]
    stats = DataStats(
        samples=len(rendered),
        tokens=sum(lengths),
        trained_tokens=sum(
            r.trained if isinstance(r, KindRow) else len(r.labels) - r.labels.count(IGNORE_INDEX)
            for r in rendered
        ),
        lengths=lengths,
        dropped=dict(dropped),
        eval_samples=len(eval_rendered),
        sources=[ds.label for ds, _ in loaded],
        dropped_examples=pick_examples(
            [e for ds, _ in loaded for e in ds.dropped_examples] + renders.examples
        ),
        prompts_shortened=sum(r.prompt_shortened for r in rendered),
    )
    train = renders.dataset(fingerprint=f"{key}-train")
    ev = eval_renders.dataset(fingerprint=f"{key}-eval") if eval_rendered else None
    write_cache(folder, train, ev, stats)
    return PreparedData(train, ev, stats, key, cache_hit=False)


def mix_and_split(cfg: Config, loaded, eval_loaded, what: str) -> tuple[list, list, Counter[str]]:
    """(training samples, eval samples, rows dropped while loading): the sources mixed by weight,
    cut to data.max_samples, and the eval split taken off the front when no eval sources are given."""
    d = cfg.data
    dropped: Counter[str] = Counter()
    for ds, _ in loaded:
        dropped.update(ds.dropped)
    samples = mix(loaded, d.seed)
    if d.max_samples:
        samples = samples[: d.max_samples]
    eval_samples: list[Sample] = [s for ds in eval_loaded for s in ds.samples]
    if d.eval_split and not eval_loaded:
        n_eval = int(d.eval_split) if d.eval_split >= 1 else max(1, round(d.eval_split * len(samples)))
        if n_eval >= len(samples):
            raise DataError(
                f"data.eval_split={d.eval_split} leaves no {what} out of {len(samples)}; lower it"
            )
        eval_samples, samples = samples[:n_eval], samples[n_eval:]
    return samples, eval_samples, dropped
