"""The data pipeline: mixing by weight, max_samples, eval split, drop counting, and the cache."""

from __future__ import annotations

import pytest

from tests.helpers.runs import make_config, write_alpaca
from tuneforge.config.load import load_config
from tuneforge.data.templates import resolve_template
from tuneforge.errors import DataError

ROWS_A = [{"instruction": f"a{i}", "input": "", "output": f"answer a{i}"} for i in range(10)]
ROWS_B = [{"instruction": f"b{i}", "input": "", "output": f"answer b{i}"} for i in range(4)]


def _prepare(tmp_path, tokenizer, model_dir, **data):
    from tuneforge.data.pipeline import prepare_data

    cfg = make_config(tmp_path, model_dir, write_alpaca(tmp_path / "a.json", ROWS_A))
    cfg["data"].update(data)
    config = load_config(None, data=cfg)
    return prepare_data(config, tokenizer, resolve_template("auto", tokenizer), "conversation")


def _sources(tmp_path, weight_b):
    return [
        {"path": str(write_alpaca(tmp_path / "a.json", ROWS_A))},
        {"path": str(write_alpaca(tmp_path / "b.json", ROWS_B)), "weight": weight_b},
    ]


def test_mix_by_weight(tmp_path, tokenizer, tiny_llama_dir):
    data = _prepare(tmp_path, tokenizer, tiny_llama_dir, datasets=_sources(tmp_path, 2.5))
    texts = [tokenizer.decode(ids) for ids in data.train["input_ids"]]
    assert data.stats.samples == 10 + 10  # round(2.5 x 4) = 10 from b
    assert sum("b" in t.split("user\n")[-1][:2] for t in texts) == 10


def test_subsample_and_max_samples(tmp_path, tokenizer, tiny_llama_dir):
    data = _prepare(tmp_path, tokenizer, tiny_llama_dir, datasets=_sources(tmp_path, 0.5), max_samples=7)
    assert data.stats.samples == 7


def test_eval_split_ratio_and_count(tmp_path, tokenizer, tiny_llama_dir):
    data = _prepare(tmp_path, tokenizer, tiny_llama_dir, eval_split=0.2)
    assert (data.stats.samples, data.stats.eval_samples) == (8, 2)
    data = _prepare(tmp_path, tokenizer, tiny_llama_dir, eval_split=3)
    assert (len(data.train), len(data.eval)) == (7, 3)
    with pytest.raises(DataError, match="leaves no training samples"):
        _prepare(tmp_path, tokenizer, tiny_llama_dir, eval_split=10)


def test_second_run_hits_the_cache(tmp_path, tokenizer, tiny_llama_dir, monkeypatch):
    first = _prepare(tmp_path, tokenizer, tiny_llama_dir)
    assert not first.cache_hit

    def boom(*args, **kwargs):
        raise AssertionError("rendered again despite the cache")

    monkeypatch.setattr("tuneforge.data.pipeline.render_conversation_chunks", boom)
    second = _prepare(tmp_path, tokenizer, tiny_llama_dir)
    assert second.cache_hit and second.fingerprint == first.fingerprint
    assert second.train["input_ids"] == first.train["input_ids"]
    assert second.train["labels"] == first.train["labels"]


def test_a_cache_hit_names_this_runs_files(tmp_path, tokenizer, tiny_llama_dir):
    rows = ROWS_A + [{"instruction": "long " * 300, "input": "", "output": "x"}]
    first, second = write_alpaca(tmp_path / "first.json", rows), write_alpaca(tmp_path / "second.json", rows)
    a = _prepare(
        tmp_path, tokenizer, tiny_llama_dir, datasets=[{"path": str(first)}], prompt_truncation="drop"
    )
    b = _prepare(
        tmp_path, tokenizer, tiny_llama_dir, datasets=[{"path": str(second)}], prompt_truncation="drop"
    )
    assert b.cache_hit and b.fingerprint == a.fingerprint  # the same rows: one cache entry
    assert b.stats.sources == [str(second)]
    assert b.stats.dropped_examples and all(e.startswith(str(second)) for e in b.stats.dropped_examples)


def test_cache_key_changes_with_options_and_data(tmp_path, tokenizer, tiny_llama_dir):
    a = _prepare(tmp_path, tokenizer, tiny_llama_dir)
    b = _prepare(tmp_path, tokenizer, tiny_llama_dir, train_on_prompt=True)
    assert a.fingerprint != b.fingerprint
    write_alpaca(tmp_path / "a.json", ROWS_A[:-1])
    from tuneforge.data.pipeline import prepare_data

    cfg = load_config(None, data=make_config(tmp_path, tiny_llama_dir, tmp_path / "a.json"))
    c = prepare_data(cfg, tokenizer, resolve_template("auto", tokenizer), "conversation")
    assert c.fingerprint != a.fingerprint and c.stats.samples == 9


def test_render_drops_are_counted(tmp_path, tokenizer, tiny_llama_dir):
    rows = ROWS_A + [{"instruction": "long " * 300, "input": "", "output": "x"}]
    write_alpaca(tmp_path / "long.json", rows)
    data = _prepare(
        tmp_path,
        tokenizer,
        tiny_llama_dir,
        datasets=[{"path": str(tmp_path / "long.json")}],
        prompt_truncation="drop",  # keep_end would keep it, shortened (tests/unit/test_prompt_truncation.py)
    )
    assert data.stats.samples == 10 and sum(data.stats.dropped.values()) == 1


def test_rows_across_chunks_are_each_sample_rendered_alone(tmp_path, tokenizer, tiny_llama_dir):
    """1,300 samples are tokenized in three batches (250, 1,000, 50) and turned into Arrow batch by
    batch; every row is still its own sample's rendering, in sample order, and drops are counted."""
    from tuneforge.data.pipeline import load_sources, mix_and_split
    from tuneforge.data.render import DropSample, RenderOptions, render_conversation

    rows = [{"instruction": f"q{i} " * (i % 3 + 1), "input": "", "output": f"a{i}"} for i in range(1300)]
    for i in (3, 600, 1290):  # too long for max_length 64: dropped in the first, second and last batch
        rows[i]["instruction"] = "long " * 300
    write_alpaca(tmp_path / "many.json", rows)
    many = [{"path": str(tmp_path / "many.json")}]
    data = _prepare(tmp_path, tokenizer, tiny_llama_dir, datasets=many, prompt_truncation="drop")

    config = load_config(None, data=make_config(tmp_path, tiny_llama_dir, tmp_path / "many.json"))
    template = resolve_template("auto", tokenizer)
    loaded = [(ds, 1.0) for ds in load_sources(config, config.data.datasets, "conversation", "data.datasets")]
    samples, _, _ = mix_and_split(config, loaded, [], "training samples")
    alone = []
    for sample in samples:
        try:
            alone.append(
                render_conversation(
                    sample, tokenizer, template, RenderOptions(max_length=64, prompt_truncation="drop")
                )
            )
        except DropSample:
            pass
    assert len(alone) == 1297 and data.stats.samples == 1297 and sum(data.stats.dropped.values()) == 3
    assert data.train["input_ids"] == [r.input_ids for r in alone]
    assert data.train["labels"] == [r.labels for r in alone]
