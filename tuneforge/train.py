"""A training run from a validated Config, top to bottom (see docs/architecture.md):

1. check the run folder, write the resolved config
2. look up stage and method; load the tokenizer; resolve the chat template
3. prepare data (cached)  4. load the model, answer the comparison prompts, apply the method
5. build the stage's trainer  6. train (resuming when asked)
7. save adapter/model, tokenizer, template, manifest, loss plot, before/after answers
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainingArguments

from tuneforge.artifacts import check_run_dir, save_run, write_config
from tuneforge.config.schema import Config, TrainConfig
from tuneforge.errors import ConfigError

log = logging.getLogger("tuneforge")


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
    callbacks: list = field(default_factory=list)
    # the method's own optimizer (``model, args -> Optimizer``), or None for the Trainer's
    optimizer_factory: Callable | None = None


# our field -> TrainingArguments field, where the names differ or need translation
_NOT_TRAINING_ARGS = {"resume_from_checkpoint", "warmup_ratio"}


def training_arguments(cfg: Config, run_dir: Path, has_eval: bool) -> TrainingArguments:
    """The explicit mapping from `train:` to HF TrainingArguments (tested field by field), plus the
    method's own extra arguments (`tuneforge.methods.method_training_arguments`)."""
    from tuneforge.methods import method_training_arguments
    from tuneforge.speed import TRAIN_FIELDS
    from tuneforge.speed.distributed import distributed_training_arguments

    t: TrainConfig = cfg.train
    skip = _NOT_TRAINING_ARGS | TRAIN_FIELDS
    kwargs = {k: v for k, v in t.model_dump().items() if k not in skip}
    kwargs["report_to"] = [r for r in t.report_to if r != "none"] or "none"
    kwargs["eval_steps"] = t.eval_steps or t.save_steps
    # transformers 5 folded warmup_ratio into warmup_steps (a float below 1 is a ratio)
    kwargs["warmup_steps"] = t.warmup_steps or t.warmup_ratio
    kwargs.update(method_training_arguments(cfg.method))
    # counted for the manifest's tokens/s (a sum over the attention mask per batch: cheap)
    kwargs.setdefault("include_num_input_tokens_seen", "non_padding")
    kwargs.update(distributed_training_arguments(t, run_dir))
    return TrainingArguments(
        output_dir=str(run_dir),
        eval_strategy="steps" if has_eval else "no",
        save_strategy="steps",
        logging_first_step=True,
        remove_unused_columns=False,
        use_cpu=not _has_accelerator(),
        disable_tqdm=False,
        **kwargs,
    )


def make_context(
    cfg: Config, run_dir: Path, model, tokenizer, train_dataset, eval_dataset, *, has_eval: bool | None = None
) -> TrainContext:
    """What a stage builds its trainer from, with the method's hooks wired in (shared by
    `run_training` and the tests that build a stage's trainer in-process)."""
    from tuneforge.methods import method_callbacks, method_optimizer_factory

    has_eval = eval_dataset is not None if has_eval is None else has_eval
    return TrainContext(
        config=cfg,
        run_dir=run_dir,
        model=model,
        tokenizer=tokenizer,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        training_args=training_arguments(cfg, run_dir, has_eval=has_eval),
        callbacks=method_callbacks(cfg.method, model),
        optimizer_factory=method_optimizer_factory(cfg.method),
    )


def _has_accelerator() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_resume(cfg: Config, run_dir: Path) -> str | None:
    from tuneforge.trainer import latest_checkpoint

    want = cfg.train.resume_from_checkpoint
    if not want:
        return None
    if want == "auto":
        last = latest_checkpoint(run_dir)
        if last is None:
            log.info("train.resume_from_checkpoint=auto: no checkpoint in %s yet, starting fresh", run_dir)
        return str(last) if last else None
    if not (Path(want) / "trainer_state.json").is_file():
        raise ConfigError(
            f"train.resume_from_checkpoint={want!r} is not a checkpoint folder (no trainer_state.json); "
            "use 'auto' or a checkpoint-N folder"
        )
    return want


def run_training(cfg: Config) -> Path | None:
    """Train and save; returns the run folder (None on the ranks other than 0 of a distributed run)."""
    import torch

    from tuneforge.data.pipeline import prepare_data
    from tuneforge.data.templates import resolve_template
    from tuneforge.eval import during
    from tuneforge.methods import METHODS
    from tuneforge.models.load import load_model, load_tokenizer, resolve_model_source
    from tuneforge.models.wrap import count_parameters, wrap
    from tuneforge.speed.huge_pages import enable_huge_pages
    from tuneforge.speed.launch import distributed_state, is_main, main_process_first
    from tuneforge.stages import STAGES

    huge_pages, why_not = enable_huge_pages(cfg.train.huge_pages)  # before anything is allocated
    log.info("speed: huge_pages=%s %s", huge_pages, why_not)
    stage = STAGES.get(cfg.stage.name)
    METHODS.get(cfg.method.name)
    state = distributed_state()  # None in a single-process run
    with main_process_first(state):  # only rank 0 checks, clears (overwrite) and writes the folder
        run_dir = check_run_dir(cfg) if is_main(state) else Path(cfg.output.dir)
        if is_main(state):
            write_config(cfg, run_dir)
    torch.manual_seed(cfg.train.seed)

    tokenizer = load_tokenizer(cfg.model)
    template = resolve_template(cfg.data.template, tokenizer) if stage.SAMPLE_KIND != "document" else None
    # a stage with its own sample shape (prompts for grpo) prepares its data itself
    with main_process_first(state):  # rank 0 tokenizes and caches; the others then read the cache
        data = getattr(stage, "prepare_data", prepare_data)(cfg, tokenizer, template, stage.SAMPLE_KIND)
    # tokenizing is done (with the Rust tokenizer's threads); a later fork (data loader workers)
    # would otherwise print tokenizers' warning about forking after it used them
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    during.check(cfg, has_eval_data=data.eval is not None)
    s = data.stats
    print(
        f"data: {s.samples} samples, {s.tokens} tokens, {s.trained_summary}"
        + (f", {sum(s.dropped.values())} dropped" if s.dropped else "")
        + (f", {s.eval_samples} held out" if s.eval_samples else "")
        + (" (from cache)" if data.cache_hit else "")
    )

    chat_template = template.jinja if template else getattr(tokenizer, "chat_template", None)
    stop_tokens = (
        template.stop_tokens if template else ((tokenizer.eos_token,) if tokenizer.eos_token else ())
    )
    # a stage may load another head (rm: a sequence-classification reward model)
    model = stage.load_model(cfg) if hasattr(stage, "load_model") else load_model(cfg.model, cfg.method)
    rows, before = (
        _answer_before(cfg, model, tokenizer, chat_template, stop_tokens) if is_main(state) else ([], [])
    )
    model = wrap(model, cfg.method)
    trainable, total = count_parameters(model)

    os.environ["TENSORBOARD_LOGGING_DIR"] = str(run_dir / "logs")
    ctx = make_context(
        cfg,
        run_dir,
        model,
        tokenizer,
        data.train,
        data.eval,
        has_eval=data.eval is not None or bool(cfg.eval.tasks),
    )
    trainer = during.build_trainer(stage, ctx)
    during.attach(trainer, cfg.eval.tasks, tokenizer, chat_template, stop_tokens)
    result = trainer.train(resume_from_checkpoint=resolve_resume(cfg, run_dir))
    metrics = dict(result.metrics)
    if data.eval is not None or cfg.eval.tasks:
        metrics.update(during.manifest_metrics(trainer.evaluate(), cfg.eval.tasks))
    metrics["global_step"] = trainer.state.global_step
    metrics["num_input_tokens_seen"] = trainer.state.num_input_tokens_seen
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    if losses:  # train_loss is the mean over the run; this is where it ended
        metrics["last_train_loss"] = losses[-1]
    if not is_main(state):
        return None

    manifest = {
        "base_model": {"name_or_path": cfg.model.name_or_path, "resolved": resolve_model_source(cfg.model)},
        "stage": cfg.stage.name,
        "method": cfg.method.name,
        "template": template.name if template else None,
        "data": {
            "fingerprint": data.fingerprint,
            "samples": s.samples,
            "tokens": s.tokens,
            "trained_share": round(s.trained_share, 4),
            "dropped": s.dropped,
        },
        "parameters": {"trainable": trainable, "total": total},
        "metrics": metrics,
        "best_checkpoint": during.best_checkpoint(trainer),
        "config": cfg.model_dump(mode="json"),
    }
    if rows:
        from tuneforge.compare import answer_all, report

        after = answer_all(trainer.model, tokenizer, rows, cfg.compare, chat_template, stop_tokens)
        manifest["compare"] = report(rows, before, after, run_dir)
    if cfg.output.plot_loss:
        from tuneforge.plots import plot_loss

        plot_loss(trainer.state.log_history, run_dir / "loss.png")
    save_run(run_dir, trainer.model, tokenizer, chat_template, stop_tokens, manifest, method_cfg=cfg.method)
    return run_dir


def _answer_before(cfg: Config, model, tokenizer, chat_template, stop_tokens):
    if not cfg.compare.prompts:
        return [], []
    from tuneforge.compare import answer_all, read_prompts

    rows = read_prompts(cfg.compare.prompts)
    print(f"answering {len(rows)} comparison prompts with the base model...")
    return rows, answer_all(model, tokenizer, rows, cfg.compare, chat_template, stop_tokens)
