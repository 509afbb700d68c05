"""Step 6 of a grpo or ppo run: ``stage.reward_funcs`` turned into TRL's reward functions, each Python
reward behind `guard` (a function that raises or returns the wrong thing becomes a TrainingError
naming it and the sample)."""

from __future__ import annotations

import importlib.util
import inspect
import math
import numbers
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tuneforge.errors import ConfigError, TrainingError, TuneforgeError
from tuneforge.rewards.builtin import BUILTINS
from tuneforge.rewards.config import _PARAMS, RewardConfig


def build_rewards(specs: list[RewardConfig]) -> tuple[list[Any], list[Any], list[float]]:
    """(reward_funcs, reward_processing_classes, reward_weights) for TRL's GRPOTrainer."""
    funcs, processors = [], []
    for i, spec in enumerate(specs):
        where = f"stage.reward_funcs[{i}]"
        if spec.model:
            from tuneforge.rewards.reward_model import load_reward_model

            model, tok = load_reward_model(spec.model, where)
            funcs.append(model)
            processors.append(tok)
            continue
        if spec.judge:
            from tuneforge.rewards.judge import make_judge

            fn = make_judge(spec, where)
        else:
            fn = resolve_function(spec, where)
        funcs.append(guard(fn, spec.label))
        processors.append(None)
    return funcs, processors, [s.weight for s in specs]


def resolve_function(spec: RewardConfig, where: str) -> Callable:
    name = spec.function or ""
    if name in BUILTINS:
        fn = BUILTINS[name]
        param = _PARAMS.get(name)
        if param is None:
            return fn
        value = getattr(spec, param)
        return lambda completions, **kw: fn(completions, **{**kw, param: value})
    if ":" not in name:
        from tuneforge.registry import did_you_mean

        raise ConfigError(
            f"{where}: unknown reward {name!r}: {did_you_mean(name, list(BUILTINS))}, or write FILE.py:FUNCTION"
        )
    return load_user_function(name, where)


def load_user_function(ref: str, where: str) -> Callable:
    """``path/to/file.py:function`` -> the function, loaded from the file (never a dotted import)."""
    file, _, func_name = ref.rpartition(":")
    path = Path(file).expanduser()
    if path.suffix != ".py" or not path.is_file():
        raise ConfigError(
            f"{where}: {file!r} is not a Python file (looked at {path.absolute()}); write FILE.py:FUNCTION"
        )
    spec = importlib.util.spec_from_file_location(f"tuneforge_user_rewards_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the user's file: say which one failed to import, and why
        raise ConfigError(f"{where}: importing {file} failed: {type(e).__name__}: {e}") from e
    fn = getattr(module, func_name, None)
    if not callable(fn):
        have = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        raise ConfigError(
            f"{where}: {file} has no function {func_name!r}; it defines: {', '.join(have) or 'none'}"
        )
    return fn


def guard(fn: Callable, name: str) -> Callable:
    """``fn`` with its errors and outputs checked; extra keyword arguments it cannot take are not passed."""
    params = inspect.signature(fn).parameters.values()
    takes_all = any(p.kind is p.VAR_KEYWORD for p in params)
    accepted = {p.name for p in params}

    def call(kwargs: dict) -> Any:
        return fn(**(kwargs if takes_all else {k: v for k, v in kwargs.items() if k in accepted}))

    def reward(prompts: list, completions: list, **kwargs) -> list[float | None]:
        everything = {"prompts": prompts, "completions": completions, **kwargs}
        try:
            out = call(everything)
        except TuneforgeError:
            raise
        except Exception as e:
            i = _first_failing(call, everything, len(completions))
            raise TrainingError(
                f"reward function {name!r} raised {type(e).__name__}: {e}"
                + (f" on {_show_sample(everything, i)}" if i is not None else "")
            ) from e
        return _check_output(out, name, everything)

    reward.__name__ = name
    return reward


def _first_failing(call: Callable, everything: dict, n: int) -> int | None:
    """The index of the first sample on which the function raises when called on it alone."""
    for i in range(n):
        one = {k: v[i : i + 1] if isinstance(v, list) and len(v) == n else v for k, v in everything.items()}
        try:
            call(one)
        except Exception:
            return i
    return None


def _show_sample(everything: dict, i: int) -> str:
    def short(x: Any) -> str:
        s = str(x)
        return repr(s if len(s) <= 80 else s[:77] + "...")

    parts = [f"sample {i}: completion {short(everything['completions'][i])}"]
    if everything.get("answer") is not None:
        parts.append(f"answer {short(everything['answer'][i])}")
    if everything.get("question") is not None:
        parts.append(f"question {short(everything['question'][i])}")
    return ", ".join(parts)


def _check_output(out: Any, name: str, everything: dict) -> list[float | None]:
    n = len(everything["completions"])
    if hasattr(out, "tolist"):  # numpy array or torch tensor
        out = out.tolist()
    if not isinstance(out, (list, tuple)):
        raise TrainingError(
            f"reward function {name!r} returned a {type(out).__name__}; it must return a list of {n} numbers "
            "(one per completion)"
        )
    if len(out) != n:
        raise TrainingError(
            f"reward function {name!r} returned {len(out)} rewards for {n} completions; return one number "
            "per completion (None where it does not apply)"
        )
    for i, r in enumerate(out):
        ok = r is None or (isinstance(r, numbers.Real) and math.isfinite(float(r)))
        if not ok:
            raise TrainingError(
                f"reward function {name!r} returned {r!r} for {_show_sample(everything, i)}; rewards must be "
                "finite numbers (or None where the function does not apply)"
            )
    return [None if r is None else float(r) for r in out]
