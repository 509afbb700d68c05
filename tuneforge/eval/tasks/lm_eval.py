"""`lm_eval`: tasks of EleutherAI's lm-evaluation-harness run on the already loaded model (its HFLM
wraps our model object, adapter included), when the optional `lm-eval` package is installed
(`pip install 'tuneforge[lm-eval]'`). Built-in harness tasks download their data from the Hugging
Face hub: offline they fail with a one-line message; tasks from `include_path` (your own task YAMLs,
e.g. `dataset_path: json` over local files) run offline."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.eval.tasks._base import TaskConfig, TaskResult

DESCRIPTION = "lm-evaluation-harness tasks on the loaded model (needs `pip install lm-eval`)."
_OFFLINE_HINTS = (
    "offline",
    "connect",
    "resolve",
    "couldn't reach",
    "hf.co",
    "huggingface.co",
    "network",
    "urlopen",
)


class Config(TaskConfig):
    name: Literal["lm_eval"] = "lm_eval"
    tasks: list[str] = Field(
        min_length=1, description="Harness task (or group) names, e.g. [arc_easy, hellaswag]."
    )
    num_fewshot: int | None = Field(None, ge=0, description="Few-shot examples (default: each task's own).")
    include_path: str | None = Field(None, description="Folder of extra harness task YAMLs (your own tasks).")
    apply_chat_template: bool = Field(
        False,
        description="Prompt through the target's chat template (the harness's own default is plain text).",
    )


def _offline(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(h in text for h in _OFFLINE_HINTS)


def flatten(results: dict) -> dict[str, float]:
    """{'arc_easy': {'acc,none': 0.5, 'acc_stderr,none': 0.1, 'alias': ...}} -> {'arc_easy/acc': 0.5}."""
    out = {}
    for task, values in results.items():
        for key, value in values.items():
            metric, _, filt = key.partition(",")
            if "_stderr" in metric or not isinstance(value, int | float) or isinstance(value, bool):
                continue
            out[f"{task}/{metric}" + ("" if filt in ("", "none") else f"_{filt}")] = float(value)
    return out


def run(cfg: Config, target) -> TaskResult:
    from tuneforge.errors import ConfigError, DataError
    from tuneforge.registry import did_you_mean

    try:
        import lm_eval
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise ConfigError(
            f"eval task {cfg.key!r} needs lm-evaluation-harness: pip install 'tuneforge[lm-eval]' (or pip install lm-eval)"
        ) from None
    manager = TaskManager(include_path=cfg.include_path)
    known = set(manager.all_tasks)
    for name in cfg.tasks:
        if name not in known:
            raise ConfigError(
                f"eval task {cfg.key!r}: unknown lm-eval task {name!r}: {did_you_mean(name, sorted(known))}"
            )
    lm = HFLM(pretrained=target.model, tokenizer=target.tokenizer, batch_size=cfg.batch_size)
    try:
        out = lm_eval.simple_evaluate(
            model=lm,
            tasks=list(cfg.tasks),
            num_fewshot=cfg.num_fewshot,
            limit=cfg.limit,
            task_manager=manager,
            apply_chat_template=cfg.apply_chat_template and bool(target.chat_template),
            log_samples=False,
            bootstrap_iters=0,
        )
    except Exception as e:  # the harness raises many kinds; only a failed download is the user's to fix
        if _offline(e):
            raise DataError(
                f"eval task {cfg.key!r}: lm-eval task(s) {', '.join(cfg.tasks)} need their data from the Hugging Face "
                f"hub, which is unreachable here ({type(e).__name__}); run where the hub is reachable, pre-download "
                "them into the datasets cache, or point a task YAML in include_path at local files"
            ) from None
        raise
    return TaskResult(metrics=flatten(out["results"]), counts={"tasks": len(cfg.tasks)})
