"""regex, BLEU and ROUGE in tuneforge.eval.metrics, against values computed by hand."""

from __future__ import annotations

import math

import pytest

from tuneforge.eval.metrics import bleu, regex_match, rouge


@pytest.mark.parametrize(
    "prediction, answer, pattern, expected",
    [
        ("The answer is 42.", "42", r"answer is (\S+)", True),  # group 1 is '42.', compared as a number
        ("The answer is 41.", "42", r"answer is (\S+)", False),
        ("Answer: (b) because ...", "B", r"\(([a-d])\)", True),  # case-insensitive string match
        ("first 7 then 9", "7", r"\d+", True),  # no group: the first whole match
        ("no digits", "7", r"\d+", False),  # no match is a miss
    ],
)
def test_regex_match(prediction, answer, pattern, expected):
    assert regex_match(prediction, answer, pattern) is expected


def test_bleu_identical_is_100():
    assert bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100.0)


def test_bleu_all_ngrams_match_but_short_pays_the_brevity_penalty():
    # hypothesis 'a b c d' (4 tokens) vs reference 'a b c d e' (5): every n-gram precision is 1,
    # so BLEU = BP = exp(1 - 5/4)
    assert bleu(["a b c d"], ["a b c d e"]) == pytest.approx(100 * math.exp(-0.25), abs=1e-6)


def test_bleu_is_corpus_level():
    # two sentences: n-gram counts are pooled before the precisions are taken. Hypotheses
    # 'a b c d' / 'w x y z' vs references 'a b c d' / 'w x y q': 1-grams 7/8, 2-grams 5/6,
    # 3-grams 3/4, 4-grams 1/2; lengths equal so BP = 1; BLEU = geometric mean
    expected = 100 * (7 / 8 * 5 / 6 * 3 / 4 * 1 / 2) ** 0.25
    assert bleu(["a b c d", "w x y z"], ["a b c d", "w x y q"]) == pytest.approx(expected, abs=1e-6)


def test_rouge_f_measures():
    # 'the cat sat' vs 'the cat ran': unigrams 2 of 3 each side (F = 2/3), bigrams 1 of 2 (F = 1/2),
    # longest common subsequence 'the cat' = 2 (F = 2/3)
    scores = rouge(["the cat sat"], ["the cat ran"])
    assert scores == pytest.approx({"rouge1": 2 / 3, "rouge2": 1 / 2, "rougeL": 2 / 3})


def test_rouge_is_averaged_over_pairs():
    # pair 1 identical (all 1.0); pair 2 'a b' vs 'a c': rouge1 F = 1/2, rouge2 F = 0, rougeL F = 1/2
    scores = rouge(["x y z", "a b"], ["x y z", "a c"])
    assert scores == pytest.approx({"rouge1": 0.75, "rouge2": 0.5, "rougeL": 0.75})
