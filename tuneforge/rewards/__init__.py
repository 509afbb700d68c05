"""Rewards for the `grpo` and `ppo` stages (step 6 of a run: the stage builds its trainer with these).

Each entry of ``stage.reward_funcs`` is one of:
- a built-in function by name (`tuneforge.rewards.builtin`: exact_match, contains, format, length);
- a user's function, ``FILE.py:FUNCTION`` (the file is loaded by path, relative to the current folder);
- ``model: FOLDER``, a reward model (AutoModelForSequenceClassification with one label: a model folder,
  or the run folder of an `rm` run), frozen;
- ``judge: URL-or-FOLDER``, an LLM judge scoring each answer from 0 to 10 (`tuneforge.rewards.judge`).

Every Python reward goes through `guard`, which turns a function that raises, returns the wrong
number of rewards or something that is not a number into a TrainingError naming the function and
the sample, instead of a traceback from deep inside TRL.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import numbers
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tuneforge.errors import ConfigError, TrainingError, TuneforgeError
from tuneforge.rewards.builtin import BUILTINS

_PARAMS = {"format": "pattern", "length": "target_length"}


class RewardConfig(BaseModel):
    """One reward; a plain string is short for ``{function: STRING}``."""

    model_config = ConfigDict(extra="forbid")

    function: str | None = Field(
        None,
        description="A built-in (exact_match, contains, format, length) or 'FILE.py:FUNCTION', a function "
        "f(completions, **kwargs) -> list of floats (kwargs: prompts, answer, question, ...).",
    )
    model: str | None = Field(
        None,
        description="A reward model: a model folder (AutoModelForSequenceClassification, num_labels=1) or "
        "the run folder of an rm run.",
    )
    judge: str | None = Field(
        None,
        description="An LLM judge: an OpenAI-compatible base URL (http://host:port/v1) or a local model folder.",
    )
    judge_model: str = Field("default", description="Model name sent to the judge endpoint.")
    judge_prompt: str | None = Field(
        None, description="Judge instructions with {question}, {answer} and {completion} placeholders."
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="Environment variable holding the judge's API key."
    )
    weight: float = Field(1.0, description="Weight of this reward in the sum (TRL's reward_weights).")
    pattern: str | None = Field(None, description="format: the regex the whole completion must match.")
    target_length: int | None = Field(
        None, gt=0, description="length: the ideal completion length in characters."
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"function": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_kind(self) -> RewardConfig:
        given = [k for k in ("function", "model", "judge") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of function, model or judge for each reward")
        for fn, param in _PARAMS.items():
            if self.function == fn and getattr(self, param) is None:
                raise ValueError(f"reward {fn!r} needs {param!r}")
        return self

    @property
    def label(self) -> str:
        if self.function:
            return self.function.rpartition(":")[2] if ":" in self.function else self.function
        return f"model:{Path(self.model).name}" if self.model else "judge"


def build_rewards(specs: list[RewardConfig]) -> tuple[list[Any], list[Any], list[float]]:
    """(reward_funcs, reward_processing_classes, reward_weights) for TRL's GRPOTrainer."""
    funcs, processors = [], []
    for i, spec in enumerate(specs):
        where = f"stage.reward_funcs[{i}]"
        if spec.model:
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


def load_reward_model(folder: str, where: str):
    """A frozen sequence-classification model with one output, and its tokenizer. ``folder`` is a model
    folder, or the run folder of an `rm` run (its adapter merged into the base)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = Path(folder).expanduser()
    if (path / "manifest.json").is_file():
        model, tok = _rm_run(path, where)
    elif not (path / "config.json").is_file():
        raise ConfigError(
            f"{where}.model: {folder!r} is not a model folder (no config.json) nor a run folder of stage rm; "
            "give a reward model (AutoModelForSequenceClassification with num_labels=1)"
        )
    else:
        model = AutoModelForSequenceClassification.from_pretrained(str(path))
        tok = AutoTokenizer.from_pretrained(str(path))
    if model.config.num_labels != 1:
        raise ConfigError(
            f"{where}.model: {folder!r} has {model.config.num_labels} labels; a reward model has exactly one"
        )
    model.requires_grad_(False)
    model.eval()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


def _rm_run(run_dir: Path, where: str):
    """An `rm` run folder as one plain model: a LoRA/QLoRA adapter is merged (into a dequantized base for
    QLoRA, `tuneforge.models.merge`), so grpo and ppo score with an ordinary PreTrainedModel."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    from tuneforge.models.merge import merge_adapter
    from tuneforge.stages.rm import load_reward_model as load_rm_run

    try:
        model = load_rm_run(run_dir)
    except TuneforgeError as e:
        raise ConfigError(f"{where}.model: {e}") from e
    if isinstance(model, PeftModel):
        model = merge_adapter(model)
    model.config._name_or_path = str(run_dir)  # rewards/<folder name>/... in the logs, as for a model folder
    tok = AutoTokenizer.from_pretrained(str(run_dir / "tokenizer"))
    model.config.pad_token_id = tok.pad_token_id  # the score is read at the last non-pad token
    return model, tok


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
