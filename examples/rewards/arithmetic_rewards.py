"""Example user reward functions for `grpo` (named in a config as examples/rewards/arithmetic_rewards.py:NAME).

A reward function takes the completions (and, by keyword, prompts, answer, question and the other
columns of the prompt data) and returns one number per completion, or None where it does not apply.
"""

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
