"""`tuneforge.generate.filters`: the reward-model filter keeps exactly the samples its model scores
at or above the threshold, each with its score in the provenance, and counts the rest; the filters
run in order, so a sample the verify function drops is never scored."""

from __future__ import annotations

import pytest
import torch

from tuneforge.generate.config import FiltersConfig
from tuneforge.generate.filters import apply_filters, reward_scores
from tuneforge.generate.recipes._base import Sample


@pytest.fixture(scope="module")
def reward_model_dir(tiny_llama_dir, tmp_path_factory):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_llama_dir, num_labels=1)
    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model.config.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    out = tmp_path_factory.mktemp("rm")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _samples() -> list[Sample]:
    answers = ["Paris.", "It is Paris, the capital.", "Lyon", "I think Marseille", "Paris!", "Berlin?"]
    return [
        Sample([{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": a}])
        for a in answers
    ]


def test_the_reward_model_keeps_what_it_scores_at_or_above_the_threshold(reward_model_dir):
    from tuneforge.generate.config import RewardModelFilter

    samples = _samples()
    probe = RewardModelFilter(model=str(reward_model_dir), threshold=0.0, batch_size=4)
    scores = reward_scores(probe, [(s.prompt, s.answer) for s in samples])
    assert len(set(scores)) == len(scores)  # the answers are told apart
    threshold = sorted(scores)[len(scores) // 2]  # half of them at or above it
    cfg = FiltersConfig(
        reward_model={"model": str(reward_model_dir), "threshold": threshold, "batch_size": 4}
    )
    kept, dropped = apply_filters(samples, cfg, ctx=None, judge_ctx=None)
    expected = [s.answer for s, v in zip(samples, scores, strict=True) if v >= threshold]
    assert [s.answer for s in kept] == expected and len(expected) == 3
    assert dropped == {f"reward model: below {threshold:g}": 3}
    for s in kept:
        assert s.provenance["reward_score"] == pytest.approx(
            scores[[x.answer for x in samples].index(s.answer)], abs=1e-3
        )
    # batched and one at a time score the same (the padding does not reach the score)
    one = reward_scores(probe.model_copy(update={"batch_size": 1}), [(s.prompt, s.answer) for s in samples])
    assert one == pytest.approx(scores, abs=1e-4)


def test_a_sample_dropped_earlier_is_not_scored(reward_model_dir):
    cfg = FiltersConfig(min_chars=7, reward_model={"model": str(reward_model_dir), "threshold": -1e9})
    kept, dropped = apply_filters(_samples(), cfg, ctx=None, judge_ctx=None)
    assert [s.answer for s in kept] == ["It is Paris, the capital.", "I think Marseille", "Berlin?"]
    assert dropped == {"answer shorter than 7 characters": 3}
    assert all("reward_score" in s.provenance for s in kept)


def test_a_folder_that_is_no_reward_model_is_named(tmp_path):
    from tuneforge.errors import ConfigError

    cfg = FiltersConfig(reward_model={"model": str(tmp_path), "threshold": 0})
    with pytest.raises(ConfigError, match="filters.reward_model.model: .* is not a model folder"):
        apply_filters(_samples(), cfg, ctx=None, judge_ctx=None)
