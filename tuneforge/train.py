"""A training run from a validated Config, top to bottom (see docs/architecture.md):

1-4. `prepare`: the run folder checked and claimed, stage, method and speed switches checked against
     each other, tokenizer, chat template, data (cached); the checkpoint to resume from verified
     and compared with this run's data and method
5.   `add_model`: the model loaded, the comparison prompts answered, the method applied
6.   `build_trainer`: speed switches applied, `train:` mapped onto TrainingArguments, the stage's trainer
7.   train, resuming from the newest intact checkpoint when asked
8.   `save`: adapter or model, tokenizer, template, manifest, loss plot, before/after answers

Called from Python it leaves the process as it found it: process-wide switches (huge pages, the
allocator, the automatic CPU thread count) belong to the `tuneforge train` process start, the
environment is restored, and `train.num_threads` holds for the call only.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path

from tuneforge.config.schema import Config
from tuneforge.errors import ConfigError
from tuneforge.training.build import build_trainer
from tuneforge.training.finish import run_metrics, save
from tuneforge.training.prepare import add_model, prepare

log = logging.getLogger("tuneforge")


def run_training(cfg: Config, config_path: str | Path | None = None) -> Path | None:
    """Train and save; returns the run folder (None on the ranks other than 0 of a distributed run).
    ``config_path``: the config file, which an overwrite of the run folder never deletes."""
    from tuneforge.threads import scoped
    from tuneforge.training.checkpoints import check_resume_compatible, run_identity

    with scoped(cfg.train.num_threads), prepare(cfg, load_weights=False, config_path=config_path) as run:
        identity = run_identity(cfg, run.data.fingerprint)
        resume = resolve_resume(cfg, run.run_dir)
        if resume:  # refused before the weights load when the data or the method changed
            for line in check_resume_compatible(
                Path(resume), **identity, allow=cfg.train.allow_changed_resume
            ):
                log.warning(line)
        add_model(run)
        trainer = build_trainer(run)
        trainer.run_identity = identity  # recorded in every checkpoint it writes
        with _no_tokenizer_threads_after_fork():
            result = trainer.train(resume_from_checkpoint=resume)
        metrics = run_metrics(run, trainer, result)
        return save(run, trainer, metrics) if run.is_main else None


def resolve_resume(cfg: Config, run_dir: Path) -> str | None:
    """The checkpoint `train.resume_from_checkpoint` names ('auto': the newest in the run folder)."""
    from tuneforge.errors import TrainingError
    from tuneforge.training.checkpoints import resume_checkpoint, verify_checkpoint

    want = cfg.train.resume_from_checkpoint
    if not want:
        return None
    if want == "auto":
        last, messages = resume_checkpoint(run_dir)  # newest first; damaged ones skipped, said why
        for line in messages:
            log.warning(line)
        if last is None:
            log.info("train.resume_from_checkpoint=auto: no checkpoint in %s yet, starting fresh", run_dir)
        return str(last) if last else None
    if not (Path(want) / "trainer_state.json").is_file():
        raise ConfigError(
            f"train.resume_from_checkpoint={want!r} is not a checkpoint folder (no trainer_state.json); "
            "use 'auto' or a checkpoint-N folder"
        )
    problem = verify_checkpoint(Path(want))
    if problem:
        raise TrainingError(
            f"train.resume_from_checkpoint={want!r}: {problem}; name an earlier checkpoint, or use 'auto'"
        )
    return want


@contextmanager
def _no_tokenizer_threads_after_fork():
    """The data is tokenized (with the Rust tokenizer's threads); a data loader worker forked now
    would make tokenizers warn about forking after it used them. Restored afterwards."""
    key, before = "TOKENIZERS_PARALLELISM", os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ.setdefault(key, "false")
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
