"""Fixtures shared by the e2e tests of the reward-driven stages (grpo, ppo)."""

from __future__ import annotations

import pytest

# Reward functions a run names as `my_rewards.py:FUNCTION`: a learnable one, one that raises on the
# row whose answer is "Katze", and one that returns the wrong number of rewards.
REWARDS_PY = """
def alternate(completions, **kwargs):
    return [float(i % 2) for i in range(len(completions))]

def broken(completions, answer, **kwargs):
    return [1.0 / len(a) if a != "Katze" else 1 / 0 for a in answer]

def short(completions, **kwargs):
    return [1.0]
"""


@pytest.fixture
def rewards_file(tmp_path, monkeypatch):
    """`my_rewards.py` in the test's folder, which becomes the working directory."""
    (tmp_path / "my_rewards.py").write_text(REWARDS_PY)
    monkeypatch.chdir(tmp_path)
    return "my_rewards.py"
