"""Step 6 of a run: `build_trainer(prepared) -> Trainer`, the same for every stage. The speed
switches the stage takes are applied to the model (`tuneforge.speed.setup`), `train:` is mapped onto
TrainingArguments (`tuneforge.training.arguments`), the method's hooks are wired in, and the stage
module builds its trainer from a `TrainContext`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainingArguments

from tuneforge.config.schema import Config
from tuneforge.training.prepare import Prepared


@dataclass
class TrainContext:
    """Everything a stage needs to build its trainer."""

    config: Config
    run_dir: Path
    model: object
    tokenizer: object
    train_dataset: object
    eval_dataset: object | None
    training_args: TrainingArguments
    speed: object  # tuneforge.speed.setup.SpeedPlan: what was turned on, the collator that goes with it
    callbacks: list = field(default_factory=list)
    # the method's own optimizer (``model, args -> Optimizer``), or None for the Trainer's
    optimizer_factory: Callable | None = None


def build_trainer(p: Prepared):
    """The stage's trainer for a prepared run (``p.model`` loaded)."""
    from tuneforge.eval import during
    from tuneforge.methods import method_callbacks, method_optimizer_factory
    from tuneforge.speed.setup import apply_speedups
    from tuneforge.training.arguments import training_arguments
    from tuneforge.training.metrics_log import FILE as METRICS_FILE
    from tuneforge.training.metrics_log import MetricsLog

    cfg = p.config
    plan = apply_speedups(p.model, p.speed, cfg.data.max_length, p.support, liger=cfg.train.use_liger_kernel)
    has_eval = p.data.eval is not None or bool(cfg.eval.tasks)
    ctx = TrainContext(
        config=cfg,
        run_dir=p.run_dir,
        model=p.model,
        tokenizer=p.tokenizer,
        train_dataset=p.data.train,
        eval_dataset=p.data.eval,
        training_args=training_arguments(cfg, p.run_dir, has_eval=has_eval),
        speed=plan,
        callbacks=method_callbacks(cfg.method, p.model),
        optimizer_factory=method_optimizer_factory(cfg.method),
    )
    trainer = during.build_trainer(p.stage, ctx)
    _tensorboard_into(trainer, p.run_dir / "logs")
    trainer.add_callback(MetricsLog(p.run_dir / METRICS_FILE))
    during.attach(trainer, cfg.eval.tasks, p.tokenizer, p.chat_template, p.stop_tokens)
    return trainer


def _tensorboard_into(trainer, folder: Path) -> None:
    """TensorBoard logs in RUN_DIR/logs (set on the callback: transformers would read it from the
    environment, which a library call must not change)."""
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback):
            callback.logging_dir = str(folder)
