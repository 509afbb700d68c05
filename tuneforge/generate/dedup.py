"""Deduplication and decontamination of generated training data.

Where it sits: `tuneforge data generate` asks a teacher model for rows, filters them (format,
length, the recipe's checks), and then, before anything is written, runs the rows' texts through
this module. Three things are removed, in this order (`deduplicate` runs all three):

1. contamination (`drop_contaminated`): rows that contain an eval item of the data a recipe names as
   its eval/test set. A teacher that has seen a benchmark reproduces its questions, and training
   on them makes the later eval measure memory, not skill; so generated training data must never
   contain a test question. The test is word n-gram overlap (n = 8 by default, as in the GPT-3 and
   Llama decontamination reports): a row is contaminated when at least `threshold` of an eval
   item's 8-grams occur in it. Long n-grams almost never occur in two texts by chance, and the
   share is measured against the eval item, so a question quoted inside a longer text is still
   found. An eval item shorter than n words is looked for whole. An inverted index from n-gram to
   eval item keeps thousands of rows x thousands of eval items fast.
2. exact duplicates (`drop_exact`): a teacher sampled many times repeats itself. The key is a sha256
   of `normalise(text)`, so case, Unicode forms, sentence punctuation and spacing do not make two
   copies differ; the first copy is kept.
3. near-duplicates (`drop_near`): the same text with a word changed or a sentence added; they add
   little and over-weight one example.
   - "minhash" (default): MinHash of the text's word 3-grams estimates their Jaccard similarity,
     and LSH banding (datasketch's MinHash and MinHashLSH) finds candidate pairs without comparing
     every pair, so it scales to large sets. The bands are chosen so that a pair at the threshold
     is a candidate with probability >= 0.99; candidates are then checked on the estimate.
   - "rouge_l": what Self-Instruct does: a new text is dropped when its ROUGE-L F1 (longest common
     word subsequence) with a kept one reaches 0.7. It is exact and order-aware but compares all
     pairs, O(n*m) each: fine for hundreds of rows, not for hundreds of thousands.

Every function returns the indices kept (into the list it was given, in order) and a `Dropped`
per removed text saying why and of what, so `generate` can report them. Results are
deterministic: the same input gives the same output in every process (no Python `hash()`).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from tuneforge.errors import ConfigError

NEAR_METHODS = ("minhash", "rouge_l")
_MINHASH_SEED = 1  # fixed: the permutations, hence the results, are the same in every process
_CANDIDATE_RECALL = 0.99  # the LSH bands make a pair at the threshold a candidate this often
_OF_CHARS = 80

# characters normalise keeps as words of their own: arithmetic operators (Unicode math symbols,
# category Sm, plus the ASCII ones Unicode files as punctuation), so "2+2" stays apart from "2-2"
_OPERATORS = frozenset("-*/%^")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"'})


@dataclass
class Dropped:
    """A text removed by one of the stages."""

    index: int  # position in the input list
    reason: str  # "exact duplicate" | "near duplicate" | "contaminated"
    of: str  # the kept text's first 80 chars, or "<eval source>: <eval item's first 80 chars>"
    score: float  # 1.0 for exact, the similarity for near, the overlap share for contamination


def normalise(text: str) -> str:
    """The key of exact dedup: Unicode NFKC, lower-cased (casefold), punctuation stripped,
    whitespace folded to single spaces.

    Punctuation (Unicode category P) becomes a space, except where it sits between two letters or
    digits ("don't", "e-mail", "3.14", "1,000" keep it), so sentence punctuation does not matter:
    "Hello, world!" == "hello world". Arithmetic operators (+ = < > and the other math symbols,
    and - * / % ^) are kept as words of their own, so "What is 2+2?", "what is 2 + 2 ?" and
    "WHAT IS 2+2" are equal while "2+2", "2-2" and "2*2" stay different."""
    s = unicodedata.normalize("NFKC", text).casefold().translate(_QUOTES)
    out: list[str] = []
    last = len(s) - 1
    for i, ch in enumerate(s):
        if ch.isalnum() or ch.isspace():
            out.append(ch)
            continue
        cat = unicodedata.category(ch)
        if ch in _OPERATORS or cat == "Sm":
            out.append(f" {ch} ")
        elif cat.startswith("P"):
            inside = 0 < i < last and s[i - 1].isalnum() and s[i + 1].isalnum()
            out.append(ch if inside else " ")
        else:
            out.append(ch)
    return " ".join("".join(out).split())


def exact_key(text: str) -> str:
    """sha256 hex digest of normalise(text)."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()


def _of(text: str) -> str:
    return text[:_OF_CHARS]


def _check_threshold(threshold: float, name: str = "threshold") -> None:
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {threshold}")


def drop_exact(texts: list[str]) -> tuple[list[int], list[Dropped]]:
    """Texts whose normalised form was seen before are dropped; the first occurrence wins and the
    kept indices are in input order."""
    first: dict[str, int] = {}
    kept: list[int] = []
    dropped: list[Dropped] = []
    for i, text in enumerate(texts):
        key = exact_key(text)
        if key in first:
            dropped.append(Dropped(i, "exact duplicate", _of(texts[first[key]]), 1.0))
        else:
            first[key] = i
            kept.append(i)
    return kept, dropped


def _grams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """The word n-grams of normalise(text); empty when it has fewer than n words."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return _grams(normalise(text).split(), n)


def _shingles(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    # a text shorter than n words is one shingle: its whole word sequence
    return _grams(tokens, n) if len(tokens) >= n else {tuple(tokens)}


def _lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band): the most rows per band (fewest false candidates) with which a pair
    whose Jaccard similarity is `threshold` still shares a band with probability >= 0.99; at least
    two bands (datasketch's MinHashLSH needs them)."""
    best = (num_perm, 1)
    for rows in range(1, num_perm // 2 + 1):
        bands = num_perm // rows
        if 1.0 - (1.0 - threshold**rows) ** bands >= _CANDIDATE_RECALL:
            best = (bands, rows)
    return best


def _drop_near_minhash(
    texts: list[str], threshold: float, num_perm: int, ngram: int
) -> tuple[list[int], list[Dropped]]:
    try:
        from datasketch import MinHash, MinHashLSH
    except ImportError:
        raise ConfigError(
            "near-duplicate method 'minhash' needs datasketch, which is not installed: "
            "pip install 'tuneforge[generate]' (or use dedup.near: rouge_l)"
        ) from None
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, params=_lsh_bands(threshold, num_perm))
    sketches: dict[int, MinHash] = {}
    kept: list[int] = []
    dropped: list[Dropped] = []
    for i, text in enumerate(texts):
        m = MinHash(num_perm=num_perm, seed=_MINHASH_SEED)
        shingles = sorted(" ".join(s).encode("utf-8") for s in _shingles(normalise(text).split(), ngram))
        m.update_batch(shingles)
        best: tuple[float, int] | None = None
        for j in sorted(lsh.query(m)):
            score = float(m.jaccard(sketches[j]))
            if score >= threshold and (best is None or score > best[0]):
                best = (score, j)
        if best is not None:
            dropped.append(Dropped(i, "near duplicate", _of(texts[best[1]]), best[0]))
        else:
            lsh.insert(i, m)
            sketches[i] = m
            kept.append(i)
    return kept, dropped


def _lcs(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common subsequence, O(len(a) * len(b)) time, O(min) memory."""
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def _rouge_l(a: Sequence[int] | Sequence[str], b: Sequence[int] | Sequence[str]) -> float:
    """ROUGE-L F1 of two word sequences: 2 * LCS / (len(a) + len(b)); 1.0 for two empty ones."""
    if not a and not b:
        return 1.0
    return 2.0 * _lcs(a, b) / (len(a) + len(b))


def _drop_near_rouge_l(texts: list[str], threshold: float) -> tuple[list[int], list[Dropped]]:
    vocab: dict[str, int] = {}
    seqs = [[vocab.setdefault(w, len(vocab)) for w in normalise(t).split()] for t in texts]
    kept: list[int] = []
    dropped: list[Dropped] = []
    for i, seq in enumerate(seqs):
        best: tuple[float, int] | None = None
        for j in kept:
            other = seqs[j]
            total = len(seq) + len(other)
            if total and 2.0 * min(len(seq), len(other)) / total < threshold:
                continue  # even an LCS of the whole shorter text would not reach the threshold
            score = _rouge_l(seq, other)
            if score >= threshold and (best is None or score > best[0]):
                best = (score, j)
        if best is not None:
            dropped.append(Dropped(i, "near duplicate", _of(texts[best[1]]), best[0]))
        else:
            kept.append(i)
    return kept, dropped


def drop_near(
    texts: list[str], threshold: float = 0.7, method: str = "minhash", num_perm: int = 128, ngram: int = 3
) -> tuple[list[int], list[Dropped]]:
    """Near-duplicates: each text is compared with the texts kept before it, and dropped when its
    similarity to one of them is >= threshold (the earlier one is kept; `of` and `score` name the
    most similar). method "minhash": estimated Jaccard similarity of word `ngram`-grams (a text
    shorter than `ngram` words is one shingle), `num_perm` permutations, LSH for candidates.
    method "rouge_l": ROUGE-L F1 of the normalised word sequences, all texts against all kept."""
    if method not in NEAR_METHODS:
        raise ValueError(f"unknown near-duplicate method {method!r}: choose one of {', '.join(NEAR_METHODS)}")
    _check_threshold(threshold)
    if method == "minhash":
        if num_perm < 2 or ngram < 1:
            raise ValueError(f"num_perm must be >= 2 and ngram >= 1, got {num_perm} and {ngram}")
        return _drop_near_minhash(texts, threshold, num_perm, ngram)
    return _drop_near_rouge_l(texts, threshold)


TEMPLATE_MIN_ITEMS = 5  # fewer eval items cannot tell a shared instruction from a repeated question


def drop_contaminated(
    texts: list[str], eval_texts: Sequence[tuple[str, str]], n: int = 8, threshold: float = 0.5
) -> tuple[list[int], list[Dropped]]:
    """Texts that contain an eval item. eval_texts: (source label, text) pairs, e.g.
    ("eval/test.jsonl line 3", "What is 23 - 71?"). A text is contaminated when, for some eval item,
    |ngrams(eval, n) & ngrams(text, n)| / |ngrams(eval, n)| >= threshold; an eval item of fewer than
    n words is contaminating when its normalised words occur, in a row, in the text's. `of` names
    the eval item with the highest share (its source, then its first 80 chars); `score` is that
    share. Eval items that normalise to nothing are ignored. With at least TEMPLATE_MIN_ITEMS items,
    the words of an n-gram found in more than half of them are the task's shared instruction, not an
    item's content, and are left out of it: training prompts written with the same instruction are
    kept, and a text holding an item's own words is still caught."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    _check_threshold(threshold)
    index: dict[tuple[str, ...], list[int]] = defaultdict(list)  # n-gram -> eval items that have it
    sizes: dict[int, int] = {}  # eval item -> its number of distinct n-grams
    short: dict[int, dict[tuple[str, ...], list[int]]] = defaultdict(lambda: defaultdict(list))
    items = {e: normalise(t).split() for e, (_, t) in enumerate(eval_texts)}
    items = {e: tokens for e, tokens in items.items() if tokens}
    for e, tokens in _without_instruction(items, n).items():
        if len(tokens) < n:
            short[len(tokens)][tuple(tokens)].append(e)
            continue
        grams = _grams(tokens, n)
        sizes[e] = len(grams)
        for g in grams:
            index[g].append(e)

    kept: list[int] = []
    dropped: list[Dropped] = []
    for i, text in enumerate(texts):
        tokens = normalise(text).split()
        hits: dict[int, int] = defaultdict(int)
        for g in _grams(tokens, n):
            for e in index.get(g, ()):
                hits[e] += 1
        best: tuple[float, int] | None = None  # (share, eval item): highest share, then first item
        for e, count in hits.items():
            share = count / sizes[e]
            if share >= threshold and (best is None or (share, -e) > (best[0], -best[1])):
                best = (share, e)
        for length, table in short.items():
            for g in _grams(tokens, length):
                for e in table.get(g, ()):
                    if best is None or (1.0, -e) > (best[0], -best[1]):
                        best = (1.0, e)
        if best is None:
            kept.append(i)
        else:
            source, eval_text = eval_texts[best[1]]
            dropped.append(Dropped(i, "contaminated", f"{source}: {_of(eval_text)}", best[0]))
    return kept, dropped


def _without_instruction(items: dict[int, list[str]], n: int) -> dict[int, list[str]]:
    """Each eval item's words less those covered by an n-gram that more than half of the items
    share (their common instruction); the items as they are when there are too few to tell."""
    long = {e: t for e, t in items.items() if len(t) >= n}
    if len(long) < TEMPLATE_MIN_ITEMS:
        return items
    seen: dict[tuple[str, ...], int] = defaultdict(int)
    for tokens in long.values():
        for g in _grams(tokens, n):
            seen[g] += 1
    shared = {g for g, count in seen.items() if count * 2 > len(long)}
    out = dict(items)
    for e, tokens in long.items():
        covered: set[int] = set()
        for i in range(len(tokens) - n + 1):
            if tuple(tokens[i : i + n]) in shared:
                covered.update(range(i, i + n))
        rest = [w for i, w in enumerate(tokens) if i not in covered]
        if rest:
            out[e] = rest
        else:
            del out[e]
    return out


def deduplicate(
    texts: list[str],
    *,
    near: str | None = "minhash",
    threshold: float = 0.7,
    eval_texts: Sequence[tuple[str, str]] = (),
    contamination_n: int = 8,
    contamination_threshold: float = 0.5,
) -> tuple[list[int], list[Dropped]]:
    """Contamination first, then exact duplicates, then near-duplicates (`near`: a drop_near method,
    None to skip). Returns the indices kept into the ORIGINAL list, in order, and every Dropped
    with its original index, sorted by it."""
    kept = list(range(len(texts)))
    dropped: list[Dropped] = []

    def stage(fn, *args, **kwargs) -> None:
        nonlocal kept
        local_kept, local_dropped = fn([texts[i] for i in kept], *args, **kwargs)
        dropped.extend(replace(d, index=kept[d.index]) for d in local_dropped)
        kept = [kept[j] for j in local_kept]

    if eval_texts:
        stage(drop_contaminated, eval_texts, n=contamination_n, threshold=contamination_threshold)
    stage(drop_exact)
    if near is not None:
        stage(drop_near, threshold=threshold, method=near)
    return kept, sorted(dropped, key=lambda d: d.index)
