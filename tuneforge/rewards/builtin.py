"""Built-in reward functions for `grpo` and `ppo` (named in ``stage.reward_funcs``), in TRL's reward-function shape:
``f(completions, answer, **kwargs) -> list[float | None]``, one reward per completion.

Answers are scored with `tuneforge.eval.metrics` (the same rules as `compare`), so a GRPO run optimises what
the before/after report measures. ``None`` means "no reference answer for this prompt": TRL then leaves
that function out of the sum for that completion.
"""

from __future__ import annotations

import re

from tuneforge.eval.metrics import contains as _contains
from tuneforge.eval.metrics import exact_match as _exact_match


def exact_match(completions: list[str], answer: list[str | None], **kwargs) -> list[float | None]:
    """1.0 when the completion matches the answer: for a numeric answer the *last* number in the completion
    equals it ("47 + 38 = 85" matches "85"); otherwise the whole completion equals the answer after
    lower-casing, collapsing spaces and dropping trailing punctuation. 0.0 otherwise."""
    return [
        None if a is None else float(_exact_match(c, a)) for c, a in zip(completions, answer, strict=True)
    ]


def contains(completions: list[str], answer: list[str | None], **kwargs) -> list[float | None]:
    """1.0 when the answer occurs in the completion (case-insensitive), else 0.0."""
    return [None if a is None else float(_contains(c, a)) for c, a in zip(completions, answer, strict=True)]


def format_reward(completions: list[str], *, pattern: str, **kwargs) -> list[float]:
    """1.0 when the whole completion (surrounding whitespace stripped) matches the regex ``pattern``."""
    rx = re.compile(pattern, re.DOTALL)
    return [float(rx.fullmatch(c.strip()) is not None) for c in completions]


def length_reward(completions: list[str], *, target_length: int, **kwargs) -> list[float]:
    """1.0 at exactly ``target_length`` characters, falling linearly to 0.0 at 0 and at twice the target."""
    return [max(0.0, 1.0 - abs(len(c) - target_length) / target_length) for c in completions]


BUILTINS = {
    "exact_match": exact_match,
    "contains": contains,
    "format": format_reward,
    "length": length_reward,
}
