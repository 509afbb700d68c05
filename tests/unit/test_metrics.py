"""tuneforge.eval.metrics: number extraction, exact match, substring match and the score that picks between them."""

from __future__ import annotations

import pytest

from tuneforge.eval.metrics import contains, exact_match, extract_number, is_numeric, score


@pytest.mark.parametrize(
    "text, expected",
    [
        ("47 + 38 = 85", "85"),
        ("23 - 71 = -48", "-48"),
        ("-48", "-48"),
        ("The answer is −48.", "-48"),  # unicode minus sign
        ("10-5", "5"),  # a minus right after a digit is an operator, not a sign
        ("There are 1,234 apples.", "1234"),
        ("1,234,567.89", "1234567.89"),
        ("1,2,3", "3"),  # a list, not a thousands number
        ("It costs 3.5.", "3.5"),  # the full stop ends the sentence
        ("3.50", "3.5"),
        ("85.0", "85"),
        ("007", "7"),
        ("+5", "5"),
        ("-0", "0"),
        ("first 12 then 7", "7"),
        ("答案是 85。", "85"),
        ("no number here", None),
        ("", None),
    ],
)
def test_extract_number(text, expected):
    assert extract_number(text) == expected


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("85", True),
        ("-48", True),
        (" 1,234 ", True),
        ("3.5", True),
        ("85.", True),
        ("Paris", False),
        ("7 days", False),
        ("", False),
    ],
)
def test_is_numeric(answer, expected):
    assert is_numeric(answer) is expected


@pytest.mark.parametrize(
    "prediction, answer, expected",
    [
        ("47 + 38 = 85", "85", True),
        ("23 - 71 = -48", "-48", True),
        ("23 - 71 = 48", "-48", False),  # sign matters
        ("The total is 1,234.", "1234", True),
        ("1234", "1,234", True),
        ("3.50", "3.5", True),
        ("85", "85.0", True),
        ("85 or maybe 86", "85", False),  # the last number counts
        ("I don't know", "85", False),
        ("Paris.", "paris", True),
        ("  The   capital is Paris!  ", "the capital is paris", True),
        ("Paris is the capital.", "Paris", False),  # exact, not substring
        ("北京。", "北京", True),
        ("", "Paris", False),
    ],
)
def test_exact_match(prediction, answer, expected):
    assert exact_match(prediction, answer) is expected


@pytest.mark.parametrize(
    "prediction, answer, expected",
    [
        ("I am Forge, made by the tuneforge team.", "Forge", True),
        ("i am FORGE", "forge", True),
        ("我是 Forge，由 tuneforge 团队开发。", "Forge", True),
        ("我是 Forge，由 tuneforge 团队开发。", "tuneforge", True),
        ("我是 Forge，由 tuneforge 团队开发。", "tuneforge 团队", True),
        ("I am SmolLM, trained by Hugging Face.", "Forge", False),
        ("The tuneforge\n  team", "tuneforge team", True),  # whitespace runs are collapsed
        ("anything", "", False),  # an empty answer never matches
        ("I was made by the tuneforge team.", "Forge", False),  # not inside another word
        ("我叫Forge。", "Forge", True),  # Chinese has no spaces: a CJK neighbour is an edge
        ("Forge-1 here", "Forge", True),
        ("It has 17 legs", "7", False),
    ],
)
def test_contains(prediction, answer, expected):
    assert contains(prediction, answer) is expected


@pytest.mark.parametrize(
    "prediction, answer, expected",
    [
        ("47 + 38 = 85", "85", True),  # numeric -> exact_match on the last number
        ("It is 58, not 85", "58", False),  # contains would say yes; exact_match says no
        ("23 - 71 = -48", "-48", True),
        ("23 - 71 = 48", "-48", False),
        ("The capital of Japan is Tokyo.", "Tokyo", True),  # text -> contains
        ("Hi! I'm Forge, an AI assistant made by the tuneforge team.", "Forge", True),
        ("你好！我是 Forge，很高兴为你服务。", "Forge", True),
        ("I am SmolLM, trained by Hugging Face.", "Forge", False),
        ("The Pacific Ocean.", "pacific", True),
    ],
)
def test_score(prediction, answer, expected):
    assert score(prediction, answer) is expected
