"""Built-in rewards with hand-computed values, the reward config, user functions from a file, and the
guard that turns a misbehaving reward function into a one-line error naming it and the sample."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from tuneforge.errors import ConfigError, TrainingError
from tuneforge.rewards.build import build_rewards, guard, load_user_function
from tuneforge.rewards.builtin import contains, exact_match, format_reward, length_reward
from tuneforge.rewards.config import RewardConfig


def test_exact_match_numeric_and_text():
    completions = ["47 + 38 = 85", "It is 84.", "1,234", "Paris.", "paris is big", "anything"]
    answers = ["85", "85", "1234", "Paris", "Paris", None]
    assert exact_match(completions, answers) == [1.0, 0.0, 1.0, 1.0, 0.0, None]


def test_contains():
    assert contains(["I am Forge!", "I am a model", "x"], ["forge", "Forge", None]) == [1.0, 0.0, None]


def test_format_matches_the_whole_stripped_completion():
    out = format_reward(["  42\n", "42 apples", "<a>x\ny</a>"], pattern=r"-?\d+|<a>.*</a>")
    assert out == [1.0, 0.0, 1.0]


def test_length_is_linear_around_the_target():
    # target 10: 10 chars -> 1, 5 -> 0.5, 15 -> 0.5, 0 -> 0, 25 -> 0 (clipped)
    out = length_reward(["a" * 10, "a" * 5, "a" * 15, "", "a" * 25], target_length=10)
    assert out == [1.0, 0.5, 0.5, 0.0, 0.0]


def test_config_shorthand_and_checks():
    assert RewardConfig.model_validate("exact_match").function == "exact_match"
    assert RewardConfig.model_validate({"model": "rm"}).label == "model:rm"
    with pytest.raises(ValidationError, match="needs 'pattern'"):
        RewardConfig.model_validate({"function": "format"})
    with pytest.raises(ValidationError, match="exactly one of"):
        RewardConfig.model_validate({"function": "exact_match", "model": "rm"})


def test_builtin_with_parameters_through_build():
    funcs, procs, weights = build_rewards(
        [RewardConfig(function="length", target_length=2, weight=0.5), RewardConfig(function="exact_match")]
    )
    assert weights == [0.5, 1.0] and procs == [None, None]
    assert [f.__name__ for f in funcs] == ["length", "exact_match"]
    assert funcs[0](prompts=["p"], completions=["ab"], answer=["x"]) == [1.0]
    assert funcs[1](prompts=["p"], completions=["x"], answer=["x"]) == [1.0]


def test_unknown_builtin_suggests(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'exact_match'"):
        build_rewards([RewardConfig(function="exact_mach")])


def test_user_function_from_file(tmp_path, monkeypatch):
    (tmp_path / "my_rewards.py").write_text(
        "def count_words(completions, **kwargs):\n    return [len(c.split()) for c in completions]\n"
        "def only_completions(completions):\n    return [1] * len(completions)\n"
    )
    monkeypatch.chdir(tmp_path)
    fn = guard(load_user_function("my_rewards.py:count_words", "r"), "count_words")
    assert fn(prompts=["p", "p"], completions=["a b c", ""], answer=["1", "2"]) == [3.0, 0.0]
    # a function without **kwargs only gets the arguments it names
    fn = guard(load_user_function("my_rewards.py:only_completions", "r"), "only_completions")
    assert fn(prompts=["p"], completions=["a"], answer=["1"], trainer_state=None) == [1.0]
    with pytest.raises(
        ConfigError, match="has no function 'nope'; it defines: count_words, only_completions"
    ):
        load_user_function("my_rewards.py:nope", "stage.reward_funcs[0]")
    with pytest.raises(ConfigError, match="is not a Python file"):
        load_user_function("missing.py:f", "stage.reward_funcs[0]")


def _call(fn, completions, answers=None):
    return guard(fn, "mine")(prompts=["p"] * len(completions), completions=completions, answer=answers)


def test_guard_names_the_function_and_the_failing_sample():
    def picky(completions, answer, **kw):
        return [float(int(a)) for a in answer]

    with pytest.raises(
        TrainingError, match=r"'mine' raised ValueError.* sample 1: completion 'b', answer 'x'"
    ):
        _call(picky, ["a", "b"], ["1", "x"])


def test_guard_wrong_length_and_type():
    with pytest.raises(TrainingError, match="returned 1 rewards for 2 completions"):
        _call(lambda completions, **kw: [1.0], ["a", "b"])
    with pytest.raises(TrainingError, match="returned a float; it must return a list of 2 numbers"):
        _call(lambda completions, **kw: 1.0, ["a", "b"])
    with pytest.raises(TrainingError, match=r"returned 'good' for sample 0: completion 'a'"):
        _call(lambda completions, **kw: ["good", 1], ["a", "b"])
    with pytest.raises(TrainingError, match="returned nan"):
        _call(lambda completions, **kw: [float("nan")], ["a"])


def test_guard_accepts_arrays_bools_and_none():
    assert _call(lambda completions, **kw: np.array([1, 0]), ["a", "b"]) == [1.0, 0.0]
    assert _call(lambda completions, **kw: [True, None], ["a", "b"]) == [1.0, None]


def test_reward_model_folder_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="not a model folder"):
        build_rewards([RewardConfig(model=str(tmp_path))])
