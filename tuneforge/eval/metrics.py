"""Answer scoring: did a model's reply contain the expected answer?

Used by `tuneforge.inference.compare` to score the before/after answers to `compare.prompts` rows that carry an
`answer`, and by the `generate` eval task (`tuneforge.eval.tasks.generate`). The match functions are
dependency-free; BLEU and ROUGE come from the maintained `sacrebleu` and `rouge-score` packages,
imported only when used.

- `score` is the one to call: a numeric answer ("85", "-48", "1,234", "3.5") is checked with
  `exact_match`, which compares the *last* number in the reply ("47 + 38 = 85" -> 85); any other
  answer is checked with `contains`, a case-insensitive whole-word test, so identity keywords such as
  "Forge" count wherever they appear in the reply, in any language, but not inside "tuneforge".
- `exact_match` on a non-numeric answer compares whole strings after lower-casing, collapsing
  whitespace and stripping trailing punctuation ("Paris." == "paris").
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Literal

# A number: optional sign (a minus counts only when it does not directly follow a word character or a
# dot, so "10-5" reads as 10 and 5, not 10 and -5), then either thousands groups ("1,234,567") or plain
# digits, then an optional decimal part. A trailing full stop ("85.") is not part of the number.
_NUMBER = r"(?:(?<![\w.])[-+])?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?"
_NUMBER_RE = re.compile(_NUMBER)
_NUMERIC_ANSWER_RE = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?")
_MINUS_SIGNS = str.maketrans({"\u2212": "-", "\u2013": "-", "\uff0d": "-", "\uff0b": "+"})
_TRAILING_PUNCT = ".,!?;:…。，！？；：、\"'”’)）」』"
_SPACE_RE = re.compile(r"\s+")
_WORD_EDGE = re.compile(r"[a-z0-9]")  # after casefold


def _normalise_number(raw: str) -> str | None:
    try:
        value = Decimal(raw.replace(",", ""))
    except InvalidOperation:
        return None
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def extract_number(text: str) -> str | None:
    """The last number in `text`, normalised: commas dropped, '+' and leading/trailing zeros removed
    ('1,234' -> '1234', '-48' -> '-48', '3.50' -> '3.5', '85.0' -> '85'); None when there is none."""
    matches = _NUMBER_RE.findall(text.translate(_MINUS_SIGNS))
    return _normalise_number(matches[-1]) if matches else None


def is_numeric(answer: str) -> bool:
    """Whether `answer` is just a number ('-48', '1,234', '3.5', '85.'), so it is scored by `exact_match`."""
    return _NUMERIC_ANSWER_RE.fullmatch(answer.translate(_MINUS_SIGNS).strip().rstrip(".")) is not None


def _normalise_text(text: str) -> str:
    text = _SPACE_RE.sub(" ", text.casefold()).strip()
    return text.rstrip(_TRAILING_PUNCT + " ").strip()


def exact_match(prediction: str, answer: str) -> bool:
    """Numeric `answer`: the last number in `prediction` equals it. Otherwise: both strings are equal
    after lower-casing, collapsing whitespace and stripping trailing punctuation."""
    if is_numeric(answer):
        predicted = extract_number(prediction)
        return predicted is not None and predicted == extract_number(answer)
    return _normalise_text(prediction) == _normalise_text(answer)


def contains(prediction: str, answer: str) -> bool:
    """`answer` occurs in `prediction` as a word of its own, ignoring case and runs of whitespace: an
    answer that starts or ends with a Latin letter or digit must not touch another one there ("Forge"
    is not in "tuneforge", "7" not in "17"), while text in scripts without spaces (Chinese) matches
    anywhere. An empty answer never matches."""
    needle = _SPACE_RE.sub(" ", answer.casefold()).strip()
    if not needle:
        return False
    start = r"(?<![a-z0-9])" if _WORD_EDGE.match(needle[0]) else ""
    end = r"(?![a-z0-9])" if _WORD_EDGE.match(needle[-1]) else ""
    return re.search(start + re.escape(needle) + end, _SPACE_RE.sub(" ", prediction.casefold())) is not None


def score(prediction: str, answer: str) -> bool:
    """Is `prediction` a good answer? `exact_match` for numeric answers (arithmetic), `contains` for
    everything else (identity keywords like "Forge" or facts like "Paris" anywhere in the reply)."""
    return exact_match(prediction, answer) if is_numeric(answer) else contains(prediction, answer)


def json_match(prediction: str, answer: str) -> bool:
    """The whole reply is one JSON value (a ```json fence around it allowed, nothing else) equal to
    the JSON of ``answer``: key order and spacing aside, every key and value the same, 34 != "34"."""
    import json

    text = prediction.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL)
    try:
        return json.loads(fenced.group(1) if fenced else text) == json.loads(answer)
    except json.JSONDecodeError:
        return False


Match = Literal["auto", "exact_match", "contains", "json_match", "regex"]  # what compare.metric names


def matcher(metric: str, pattern: str | None = None):
    """The (prediction, answer) -> bool test a config names: auto is `score`."""
    if metric == "regex":
        return lambda p, a: regex_match(p, a, pattern or "")
    return {"auto": score, "exact_match": exact_match, "contains": contains, "json_match": json_match}[metric]


def regex_match(prediction: str, answer: str, pattern: str) -> bool:
    r"""The first match of `pattern` in `prediction` (its first capture group when it has one)
    `exact_match`es `answer`; no match is a miss. E.g. pattern r"answer is (\S+)"."""
    found = re.search(pattern, prediction)
    if found is None:
        return False
    return exact_match(found.group(1) if found.re.groups else found.group(0), answer)


def bleu(predictions: list[str], references: list[str]) -> float:
    """Corpus BLEU (sacrebleu defaults: 13a tokenizer, exponential smoothing), 0-100."""
    from tuneforge.extras import require

    require("the bleu metric", "sacrebleu")
    import sacrebleu

    return float(sacrebleu.corpus_bleu(predictions, [references]).score)


def rouge(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F-measure over the pairs (rouge-score), each 0-1."""
    from tuneforge.extras import require

    require("the rouge metric", "rouge_score")
    from rouge_score import rouge_scorer

    kinds = ("rouge1", "rouge2", "rougeL")
    scorer = rouge_scorer.RougeScorer(list(kinds))
    totals = dict.fromkeys(kinds, 0.0)
    for pred, ref in zip(predictions, references, strict=True):
        scores = scorer.score(ref, pred)
        for k in kinds:
            totals[k] += scores[k].fmeasure
    n = max(len(predictions), 1)
    return {k: totals[k] / n for k in kinds}
