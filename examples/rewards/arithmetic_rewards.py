"""Example user reward functions for `grpo` (named in a config as examples/rewards/arithmetic_rewards.py:NAME).

A reward function takes the completions (and, by keyword, prompts, answer, question and the other
columns of the prompt data) and returns one number per completion, or None where it does not apply.
"""

import math
import re


def short_and_numeric(completions, **kwargs):
    """1.0 for a bare number, 0.5 for a short reply that contains one, 0.0 otherwise."""
    scores = []
    for c in completions:
        c = c.strip()
        if re.fullmatch(r"-?\d+", c):
            scores.append(1.0)
        elif re.search(r"-?\d+", c) and len(c) <= 20:
            scores.append(0.5)
        else:
            scores.append(0.0)
    return scores


def _last_number(text) -> int | None:
    found = re.findall(r"-?\d+", str(text))
    return int(found[-1]) if found else None


def close_to_answer(completions, answer, **kwargs):
    """Partial credit for a numeric answer: exp(-|reply - answer| / 10) on the last number of each.

    Exact match alone is 0 for every wrong answer, so a group whose answers are all wrong carries no
    gradient; this one still ranks "31" (0.82) above "-22" (0.004) for 78 - 45 = 33. None where the
    answer has no number.
    """
    scores = []
    for c, a in zip(completions, answer, strict=True):
        want, got = _last_number(a), _last_number(c)
        if want is None:
            scores.append(None)
        elif got is None:
            scores.append(0.0)
        else:
            scores.append(math.exp(-abs(got - want) / 10))
    return scores
