"""examples/rewards/arithmetic_rewards.py, the user reward functions the grpo docs name: the scores
they give, by hand."""

from __future__ import annotations

import math

from tests.helpers.examples import load_example


def _rewards():
    return load_example("examples/rewards/arithmetic_rewards.py")


def test_short_and_numeric():
    assert _rewards().short_and_numeric(["42", " -7 ", "it is 42", "x" * 30 + " 42", "none"]) == [
        1.0,
        1.0,
        0.5,
        0.0,
        0.0,
    ]


def test_close_to_answer_gives_partial_credit_by_distance():
    scores = _rewards().close_to_answer(
        ["78 - 45 = 33", "78 - 45 = 31", "78 - 45 = -22", "no number", "5"],
        answer=["78 - 45 = 33"] * 4 + ["no number either"],
    )
    assert scores[:2] == [1.0, math.exp(-0.2)]
    assert math.isclose(scores[2], math.exp(-5.5)) and scores[3] == 0.0 and scores[4] is None
