"""The `eval:` section of a training config: its tasks run at every evaluation of the Trainer
(every train.eval_steps, default save_steps) and once at the end.

Their numbers join the Trainer's eval metrics as ``eval_<label>/<metric>``, so they are logged,
reach TensorBoard as ``eval/<label>/<metric>`` (the Trainer's own renaming), can be HF's
``metric_for_best_model`` (``train.metric_for_best_model: <label>/<metric>``, with
``load_best_model_at_end`` keeping the best checkpoint), and land in manifest.json under
``metrics`` as ``eval/<label>/<metric>``. `attach` wraps the trainer instance's ``evaluate`` rather
than subclassing, so it works for every stage's trainer (TRL's included) without the stage knowing.
"""

from __future__ import annotations

import logging

from tuneforge.config.schema import Config
from tuneforge.errors import ConfigError
from tuneforge.eval.target import Target
from tuneforge.eval.tasks import TASKS

log = logging.getLogger("tuneforge")


def check(cfg: Config, has_eval_data: bool) -> None:
    """Before anything heavy: the best-model metric names a task metric or the eval loss."""
    keys = [t.key for t in cfg.eval.tasks]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise ConfigError(
            f"eval.tasks: two tasks are called {sorted(dup)[0]!r}; give each a different `label:`"
        )
    metric = cfg.train.metric_for_best_model
    if cfg.train.load_best_model_at_end and not (has_eval_data or keys):
        raise ConfigError(
            "train.load_best_model_at_end needs evaluations: add eval.tasks or held-out data (data.eval_split)"
        )
    if metric is None:
        return
    name = metric.removeprefix("eval_")
    if "/" in name:
        label = name.split("/", 1)[0]
        if label not in keys:
            raise ConfigError(
                f"train.metric_for_best_model={metric!r}: no eval task is labelled {label!r} "
                f"(eval.tasks labels: {', '.join(keys) or 'none'})"
            )
    elif name == "loss" and not has_eval_data:
        raise ConfigError(
            "train.metric_for_best_model=loss needs held-out data (data.eval_split or data.eval_datasets); "
            "or name an eval task metric, e.g. <label>/exact_match"
        )


def run_tasks(tasks: list, target: Target, prefix: str = "eval") -> dict[str, float]:
    """Every task's headline metrics, flattened to ``<prefix>_<label>/<metric>``."""
    model = target.model
    was_training = model.training
    model.eval()
    out: dict[str, float] = {}
    try:
        for task in tasks:
            result = TASKS.get(task.name).run(task, target)
            out.update({f"{prefix}_{task.key}/{k}": float(v) for k, v in result.metrics.items()})
    finally:
        if was_training:
            model.train()
    return out


def attach(trainer, tasks: list, tokenizer, chat_template: str | None, stop_tokens) -> None:
    """Make ``trainer.evaluate()`` run `tasks` too (and work without held-out data)."""
    if not tasks:
        return
    original = trainer.evaluate

    def evaluate(eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        has_data = eval_dataset is not None or trainer.eval_dataset is not None
        metrics = original(eval_dataset, ignore_keys, metric_key_prefix) if has_data else {}
        target = Target(trainer.model, tokenizer, chat_template, tuple(stop_tokens), "training")
        extra = run_tasks(tasks, target, metric_key_prefix)
        log.info(
            "step %d: %s", trainer.state.global_step, ", ".join(f"{k} {v:.4g}" for k, v in extra.items())
        )
        trainer.log(dict(extra))
        metrics.update(extra)
        if not has_data:  # the Trainer's evaluate would have told the callbacks (and reset should_evaluate)
            trainer.control = trainer.callback_handler.on_evaluate(
                trainer.args, trainer.state, trainer.control, metrics=metrics
            )
        return metrics

    trainer.evaluate = evaluate


def build_trainer(stage, ctx):
    """The stage's trainer. With eval tasks but no held-out data the Trainer would refuse
    eval_strategy='steps' at construction (it wants an eval_dataset); our `evaluate` needs none,
    so the strategy is switched off for the constructor only."""
    args = ctx.training_args
    if ctx.eval_dataset is not None or not ctx.config.eval.tasks:
        return stage.build_trainer(ctx)
    strategy = args.eval_strategy
    args.eval_strategy = "no"
    try:
        return stage.build_trainer(ctx)
    finally:
        args.eval_strategy = strategy


def manifest_metrics(metrics: dict, tasks: list) -> dict:
    """Task metrics renamed ``eval_<label>/<metric>`` -> ``eval/<label>/<metric>`` (as in TensorBoard);
    a stage's own metrics (DPO's ``eval_rewards/margins``) keep their names."""
    labels = {t.key for t in tasks}

    def rename(key: str) -> str:
        label = key.removeprefix("eval_").split("/", 1)[0]
        return f"eval/{key.removeprefix('eval_')}" if key.startswith("eval_") and label in labels else key

    return {rename(k): v for k, v in metrics.items()}


def best_checkpoint(trainer) -> dict:
    state = trainer.state
    if trainer.args.metric_for_best_model is None or state.best_metric is None:
        return {}
    return {
        "metric": trainer.args.metric_for_best_model,
        "value": state.best_metric,
        "step": state.best_global_step,
        "checkpoint": state.best_model_checkpoint,
        "loaded_at_end": trainer.args.load_best_model_at_end,
    }
