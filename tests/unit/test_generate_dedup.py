"""tuneforge.generate.dedup: what normalise makes equal, exact and near duplicates (both methods) on
hand-made near-copies, decontamination against eval items, the indices deduplicate returns, and
that results are the same in every process."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tuneforge.generate.dedup import (
    Dropped,
    _lsh_bands,
    deduplicate,
    drop_contaminated,
    drop_exact,
    drop_near,
    exact_key,
    ngrams,
    normalise,
)

ROOT = Path(__file__).parents[2]

BASE = (
    "The mitochondrion is the part of the cell that turns food into usable energy. It takes in "
    "sugars and oxygen and gives off carbon dioxide, and the energy it frees is stored in small "
    "molecules that the rest of the cell spends to build proteins, move cargo along its fibres "
    "and keep the charge across its membranes."
)
ONE_WORD = BASE.replace("turns food into", "turns nutrients into")
SWAPPED = BASE.replace("small molecules", "molecules small")
APPENDED = BASE + " Cells that need a lot of energy have many of them."
# the same topic, other words: neither is a near-duplicate of BASE
OTHER_1 = (
    "Mitochondria carry a small circular genome of their own, passed down from the mother, and "
    "they divide by themselves inside the cell. Biologists think they began as free-living "
    "bacteria that an ancestral cell swallowed about two billion years ago and never digested."
)
OTHER_2 = (
    "When mitochondria fail, tissues with a high demand for energy, such as muscle and brain, "
    "suffer first; several inherited diseases come from faults in mitochondrial genes, and some "
    "of them can be seen as weakness, poor eyesight or seizures early in childhood."
)
NEAR_COPIES = [ONE_WORD, SWAPPED, APPENDED]
METHODS = ["minhash", "rouge_l"]


def _words(text: str) -> int:
    return len(normalise(text).split())


# --- normalise / exact ---------------------------------------------------------------------------


def test_normalise_what_is_equal_and_what_is_not():
    # case, sentence punctuation and spacing do not matter ...
    assert normalise("  Hello,   WORLD!\n") == "hello world"
    assert normalise("wait...what?!") == "wait what"  # punctuation becomes a space, not nothing
    assert normalise("Ｆｕｌｌ width") == "full width"  # NFKC folds full-width forms
    # ... arithmetic operators are words of their own, so spacing around them does not matter either:
    # "2+2" and "2 + 2" are the same question
    assert (
        normalise("What is 2+2?")
        == normalise("what is 2 + 2 ?")
        == normalise("WHAT IS 2+2")
        == "what is 2 + 2"
    )
    # ... but which operator it is does, and so does punctuation inside a number or word
    keys = {normalise(q) for q in ("What is 2+2?", "What is 2-2?", "What is 2*2?", "What is 2/2?")}
    assert len(keys) == 4
    assert normalise("What is 23 - 71?") != normalise("What is 23 * 71?")
    assert normalise("pi is 3.14") != normalise("pi is 314")
    assert normalise("don’t") == normalise("don't") == "don't"
    assert exact_key("What is 2+2?") == exact_key("WHAT IS 2+2") != exact_key("What is 2-2?")
    assert len(exact_key("x")) == 64


def test_drop_exact_first_wins_and_order_is_kept():
    texts = [
        "What is 2+2?",
        "What is 2-2?",
        "what is 2 + 2 ?",
        "Name a prime.",
        "WHAT IS 2+2",
        "name a PRIME",
    ]
    kept, dropped = drop_exact(texts)
    assert kept == [0, 1, 3]
    assert dropped == [
        Dropped(2, "exact duplicate", "What is 2+2?", 1.0),
        Dropped(4, "exact duplicate", "What is 2+2?", 1.0),
        Dropped(5, "exact duplicate", "Name a prime.", 1.0),
    ]
    assert drop_exact([]) == ([], [])


def test_exact_of_is_the_kept_texts_first_80_chars():
    kept, dropped = drop_exact([BASE, BASE.upper()])
    assert kept == [0] and dropped[0].of == BASE[:80] and len(dropped[0].of) == 80


# --- near ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_hand_made_near_copies_are_dropped_other_paragraphs_kept(method):
    texts = [BASE, ONE_WORD, OTHER_1, SWAPPED, APPENDED, OTHER_2]
    kept, dropped = drop_near(texts, threshold=0.7, method=method)
    assert kept == [0, 2, 5]
    assert [d.index for d in dropped] == [1, 3, 4]
    for d in dropped:
        assert d.reason == "near duplicate" and d.of == BASE[:80]
        assert 0.7 <= d.score < 1.0


@pytest.mark.parametrize("method", METHODS)
def test_same_topic_paragraphs_are_all_kept(method):
    assert drop_near([BASE, OTHER_1, OTHER_2], method=method) == ([0, 1, 2], [])


@pytest.mark.parametrize("method", METHODS)
def test_the_threshold_decides(method):
    # the near-copies are similar but not identical: a threshold of 0.99 keeps them all
    assert drop_near([BASE, *NEAR_COPIES], threshold=0.99, method=method) == ([0, 1, 2, 3], [])
    # an identical text reaches any threshold
    kept, dropped = drop_near([BASE, BASE], threshold=1.0, method=method)
    assert kept == [0] and dropped[0].score == 1.0


def test_rouge_l_score_is_the_lcs_f1():
    n = _words(BASE)
    extra = _words(APPENDED) - n
    _, dropped = drop_near([BASE, *NEAR_COPIES], method="rouge_l")
    one_word, swapped, appended = (d.score for d in dropped)
    assert one_word == pytest.approx(2 * (n - 1) / (2 * n))  # LCS misses the changed word
    assert swapped == pytest.approx(2 * (n - 1) / (2 * n))  # LCS keeps one of the two swapped words
    assert appended == pytest.approx(2 * n / (2 * n + extra))  # all of BASE is a subsequence


def test_minhash_score_estimates_the_jaccard_of_word_3grams():
    a, b = ngrams(BASE, 3), ngrams(APPENDED, 3)
    jaccard = len(a & b) / len(a | b)
    _, dropped = drop_near([BASE, APPENDED], method="minhash", num_perm=256)
    assert dropped[0].score == pytest.approx(jaccard, abs=0.1)


def test_texts_shorter_than_the_shingle_are_one_shingle():
    # two words, ngram 3: the whole word sequence is the shingle, so only the same two words match
    kept, dropped = drop_near(["Hello there", "hello, THERE!", "hello world"], method="minhash")
    assert kept == [0, 2] and dropped[0].index == 1 and dropped[0].score == 1.0


@pytest.mark.parametrize("method,threshold", [("minhash", 0.6), ("rouge_l", 0.75)])
def test_a_text_is_compared_with_the_kept_texts_only(method, threshold):
    # B is A with its first 10 of 60 words changed, C is B with its last 10 changed: B is near A,
    # C is near B (dropped) but not near A, so C is kept (Self-Instruct's all-against-kept pool)
    a = [f"a{i}" for i in range(60)]
    b = [f"b{i}" for i in range(10)] + a[10:]
    c = b[:50] + [f"c{i}" for i in range(10)]
    kept, dropped = drop_near([" ".join(a), " ".join(b), " ".join(c)], threshold=threshold, method=method)
    assert kept == [0, 2]
    assert [(d.index, d.of) for d in dropped] == [(1, " ".join(a)[:80])]


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7, 0.8, 0.9, 1.0])
def test_lsh_bands_make_a_pair_at_the_threshold_a_candidate(threshold):
    # datasketch's own choice for 0.7 (14 bands of 9) finds a pair of similarity 0.75 only 2 times in 3
    bands, rows = _lsh_bands(threshold, 128)
    assert bands >= 2 and bands * rows <= 128
    assert 1 - (1 - threshold**rows) ** bands >= 0.99


def test_unknown_method_and_bad_threshold_say_what_is_allowed():
    with pytest.raises(ValueError, match="minhash.*rouge_l"):
        drop_near([BASE], method="simhash")
    with pytest.raises(ValueError, match="threshold"):
        drop_near([BASE], threshold=0.0)
    with pytest.raises(ValueError, match="threshold"):
        drop_contaminated([BASE], [("e", BASE)], threshold=1.5)


# --- determinism ---------------------------------------------------------------------------------

_CHILD = """
import json, sys
from dataclasses import asdict
from tuneforge.generate.dedup import deduplicate, drop_near
texts = json.loads(sys.stdin.read())
out = {m: drop_near(texts, method=m) for m in ("minhash", "rouge_l")}
out["all"] = deduplicate(texts, eval_texts=[("eval.jsonl line 1", texts[0])])
print(json.dumps({k: [kept, [asdict(d) for d in dropped]] for k, (kept, dropped) in out.items()}))
"""


def _corpus(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(500)]
    return [" ".join(rng.choice(vocab) for _ in range(rng.randint(12, 20))) for _ in range(count)]


def test_same_results_in_two_calls_and_in_other_processes():
    texts = [BASE, ONE_WORD, OTHER_1, SWAPPED, APPENDED, OTHER_2, *_corpus(40)]
    texts += [t + " extra" for t in texts[6:16]]
    first = drop_near(texts)
    assert drop_near(texts) == first
    assert drop_near(texts, method="rouge_l") == drop_near(texts, method="rouge_l")
    assert len(first[1]) == 3 + 10  # the hand-made near-copies and the 10 near-copies of the corpus

    results = []
    for hash_seed in ("1", "2"):  # str hashes differ between these processes; the results must not
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD], input=json.dumps(texts), capture_output=True, text=True, env=env
        )
        assert proc.returncode == 0, proc.stderr
        results.append(json.loads(proc.stdout))
    assert results[0] == results[1]
    assert results[0]["minhash"][0] == first[0]


# --- contamination -------------------------------------------------------------------------------

EVAL_LONG = (
    "A train leaves the station at nine and travels at sixty miles per hour; how far has it gone by noon?"
)
EVAL = [
    ("eval/test.jsonl line 3", EVAL_LONG),
    ("eval/test.jsonl line 7", "What is 23 - 71?"),
]


def test_an_eval_question_quoted_inside_a_longer_text_is_contaminated():
    generated = [
        "Here is a practice problem for you. " + EVAL_LONG.upper() + " Show your work and give the answer.",
        "By midday, how many miles has a train covered if it departed at 9 going 60 mph?",  # a paraphrase
    ]
    kept, dropped = drop_contaminated(generated, EVAL)
    assert kept == [1]
    assert len(dropped) == 1
    d = dropped[0]
    assert (d.index, d.reason, d.score) == (0, "contaminated", 1.0)
    assert d.of.startswith("eval/test.jsonl line 3: ") and d.of.endswith(EVAL_LONG[:80])


def test_the_share_is_of_the_eval_items_ngrams():
    words = EVAL_LONG.split()  # 21 words: 14 8-grams
    assert len(ngrams(EVAL_LONG, 8)) == 14
    half = "Consider this: " + " ".join(words[:12]) + " and then stop."  # 5 of the 14 8-grams
    assert drop_contaminated([half], EVAL) == ([0], [])  # 5/14 < 0.5
    kept, dropped = drop_contaminated([half], EVAL, threshold=0.3)
    assert kept == [] and dropped[0].score == pytest.approx(5 / 14)


def test_a_short_eval_item_is_looked_for_whole():
    generated = [
        "Quick quiz: what is 23 - 71? The answer is below.",  # contains the 4-word item
        "What is 23 - 715?",  # a longer number: not the item
        "What is 23 + 71?",  # another operator: not the item
        "What is 23 - 71",  # the item itself, without its question mark
    ]
    kept, dropped = drop_contaminated(generated, EVAL)
    assert kept == [1, 2]
    assert [(d.index, d.score) for d in dropped] == [(0, 1.0), (3, 1.0)]
    assert all(d.of == "eval/test.jsonl line 7: What is 23 - 71?" for d in dropped)


def test_no_eval_items_or_empty_ones_contaminate_nothing():
    assert drop_contaminated([BASE, "?"], []) == ([0, 1], [])
    assert drop_contaminated([BASE, "?"], [("blank", " ... ")]) == ([0, 1], [])


INSTRUCTION = (
    "Extract the person's name, age and city from this text as JSON with the keys name, age and city:"
)
PEOPLE = [
    "Oscar Silva is 57 and lives in Tampa.",
    "Riga is home to Hana Olsen, who is 66 years old.",
    "At 31, Ida Reyes runs a small bakery in Durban.",
    "Our new colleague Bruno Park (44) joins the Genoa office on Monday.",
    "Vera Costa celebrated a 29th birthday with friends in Bremen.",
]


def test_a_shared_instruction_is_not_contamination_its_content_is():
    checks = [(f"checks line {i}", f"{INSTRUCTION} {p}") for i, p in enumerate(PEOPLE, 1)]
    generated = [
        f"{INSTRUCTION} Maria Lopez is 34 and lives in Lisbon.",  # the same instruction, another person
        f"{INSTRUCTION} Riga is home to Hana Olsen, who is 66 years old.",  # a check itself
        f"Here is one: At 31, Ida Reyes runs a small bakery in Durban. {INSTRUCTION}",  # a check's text
    ]
    kept, dropped = drop_contaminated(generated, checks)
    assert kept == [0]
    assert [(d.index, d.of.split(":")[0]) for d in dropped] == [(1, "checks line 2"), (2, "checks line 3")]
    # with fewer items than it takes to tell an instruction apart, every shared n-gram counts
    kept, _ = drop_contaminated(generated[:1], checks[:2])
    assert kept == []


# --- deduplicate ---------------------------------------------------------------------------------


def test_deduplicate_returns_indices_into_the_original_list():
    texts = [
        "What is 2+2?",  # 0 kept
        "Try this one. " + EVAL_LONG,  # 1 contaminated
        BASE,  # 2 kept
        "WHAT IS 2 + 2",  # 3 exact duplicate of 0
        ONE_WORD,  # 4 near duplicate of 2
        "Try this one. " + EVAL_LONG,  # 5 contaminated (also an exact copy of 1, which is gone)
        OTHER_1,  # 6 kept
        APPENDED,  # 7 near duplicate of 2
        "what is 2+2",  # 8 exact duplicate of 0
    ]
    for near in METHODS:
        kept, dropped = deduplicate(texts, near=near, eval_texts=EVAL)
        assert kept == [0, 2, 6]
        assert [(d.index, d.reason) for d in dropped] == [
            (1, "contaminated"),
            (3, "exact duplicate"),
            (4, "near duplicate"),
            (5, "contaminated"),
            (7, "near duplicate"),
            (8, "exact duplicate"),
        ]
        for d in dropped:
            if d.reason != "contaminated":
                assert d.of == texts[2 if d.reason == "near duplicate" else 0][:80]
    kept, dropped = deduplicate(texts, near=None, eval_texts=EVAL)
    assert kept == [0, 2, 4, 6, 7]
    assert deduplicate(texts, near=None) == (
        [0, 1, 2, 4, 6, 7],
        [Dropped(i, "exact duplicate", texts[j][:80], 1.0) for i, j in ((3, 0), (5, 1), (8, 0))],
    )


# --- scale ---------------------------------------------------------------------------------------


def test_two_thousand_distinct_texts_are_all_kept_and_copies_among_them_found():
    texts = _corpus(2000, seed=1)
    assert drop_near(texts) == (list(range(2000)), [])
    copies = [texts[i] + " again" for i in range(0, 2000, 100)]  # 20 near-copies, at the end
    kept, dropped = drop_near(texts + copies)
    assert kept == list(range(2000))
    assert [(d.index, d.of) for d in dropped] == [(2000 + k, texts[100 * k][:80]) for k in range(20)]
    eval_items = [(f"eval.jsonl line {i}", t) for i, t in enumerate(_corpus(1000, seed=2))]
    assert drop_contaminated(texts, eval_items) == (list(range(2000)), [])
