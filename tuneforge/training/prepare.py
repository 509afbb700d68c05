"""Steps 1-5 of a run, the one prologue: `prepare(cfg) -> Prepared` (run folder, stage, method and
speed switches checked against each other, tokenizer, chat template, data, model with the method
applied). `tuneforge train`, `data inspect`, `estimate`, the candidate runner's children and the tests
all start here, so what they see cannot drift apart.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from tuneforge.config.schema import Config
from tuneforge.config.train import SpeedConfig
from tuneforge.speed.support import StageSpeed

log = logging.getLogger("tuneforge")


@dataclass
class Prepared:
    """Everything a run has before its trainer is built. Use it as a context manager: leaving it
    releases the run folder (`prepare(..., write_folder=True)` holds its lock)."""

    config: Config
    stage: ModuleType
    run_dir: Path
    speed: SpeedConfig  # the `speed:` section resolved for this stage (`tuneforge.speed.support`)
    support: StageSpeed
    tokenizer: Any
    template: Any  # tuneforge.data.templates.Template, or None for plain-text stages
    chat_template: str | None
    stop_tokens: tuple[str, ...]
    data: Any  # tuneforge.data.pipeline.PreparedData
    state: Any = None  # accelerate's process state in a distributed run, else None
    model: Any = None  # the model with the method applied (None when weights were not loaded)
    parameters: tuple[int, int] = (0, 0)  # (trainable, total)
    compare_rows: list = field(default_factory=list)
    answers_before: list = field(default_factory=list)
    _held: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)

    @property
    def is_main(self) -> bool:
        return self.state is None or self.state.is_main_process

    def __enter__(self) -> Prepared:
        return self

    def __exit__(self, *exc) -> None:
        self._held.close()


def prepare(
    cfg: Config,
    *,
    load_weights: bool = True,
    write_folder: bool = True,
    quiet: bool = False,
    config_path=None,
) -> Prepared:
    """The run up to its trainer. ``write_folder``: check and claim ``output.dir`` and write the
    resolved config there (train); ``load_weights``: load the model and apply the method (train,
    the tests), else only what `data inspect` and `estimate` need; ``quiet``: no data summary line;
    ``config_path``: the config file, which an overwrite never deletes."""
    import torch

    from tuneforge.data.pipeline import prepare_data
    from tuneforge.data.system_prompt import run_template
    from tuneforge.eval import during
    from tuneforge.methods import METHODS
    from tuneforge.models.load import load_tokenizer
    from tuneforge.scale.launch import distributed_state, main_process_first
    from tuneforge.speed.support import resolve, stage_speed
    from tuneforge.stages import STAGES

    stage = STAGES.get(cfg.stage.name)
    METHODS.get(cfg.method.name)
    support = stage_speed(stage, cfg.stage)
    speed = resolve(cfg.speed, cfg.stage.name, support)  # a forced switch the stage lacks fails here
    state = distributed_state()  # None in a single-process run
    held = contextlib.ExitStack()
    with held:  # closed here only when preparing fails (the lock released); else the Prepared holds it
        run_dir = Path(cfg.output.dir)
        if write_folder:
            run_dir = _claim_folder(cfg, state, held, config_path)
        torch.manual_seed(cfg.train.seed)

        tokenizer = load_tokenizer(cfg.model)
        template = run_template(cfg.data, tokenizer) if stage.SAMPLE_KIND != "document" else None
        # a stage with its own sample shape (prompts for grpo) prepares its data itself
        stage_data = STAGES.hook(stage, "prepare_data") or prepare_data
        with main_process_first(state):  # rank 0 tokenizes and caches; the others then read the cache
            data = stage_data(cfg, tokenizer, template, stage.SAMPLE_KIND)
        during.check(cfg, has_eval_data=data.eval is not None)
        if not quiet:
            print(_data_summary(data, cfg.data.prompt_truncation))
        chat_template = template.jinja if template else getattr(tokenizer, "chat_template", None)
        if template:  # checkpoints save the tokenizer too: they carry the run's template, not the base's
            tokenizer.chat_template = template.jinja
        stop_tokens = (
            tuple(template.stop_tokens)
            if template
            else ((tokenizer.eos_token,) if tokenizer.eos_token else ())
        )
        prepared = Prepared(
            cfg, stage, run_dir, speed, support, tokenizer, template, chat_template, stop_tokens, data, state
        )
        if load_weights:
            add_model(prepared)
        prepared._held = held.pop_all()
    return prepared


def _claim_folder(cfg: Config, state, held: contextlib.ExitStack, config_path=None) -> Path:
    """Rank 0 checks ``output.dir`` (never silently overwritten), takes its lock and writes the
    resolved config; the other ranks wait for it."""
    from tuneforge.artifacts.folder import check_run_dir, run_folder_lock, write_config
    from tuneforge.scale.launch import main_process_first

    run_dir = Path(cfg.output.dir)
    with main_process_first(state):
        if state is None or state.is_main_process:
            held.enter_context(run_folder_lock(run_dir))  # released when the Prepared is left
            run_dir = check_run_dir(cfg, config_path)
            write_config(cfg, run_dir)
    return run_dir


def add_model(p: Prepared) -> None:
    """Step 5: the model (a stage may load another head: rm's reward model), the comparison prompts
    answered by the base, then the method applied (`tuneforge.models.wrap`, the one place)."""
    from tuneforge.models.load import load_model
    from tuneforge.models.wrap import count_parameters, wrap
    from tuneforge.stages import STAGES

    cfg = p.config
    load = STAGES.hook(p.stage, "load_model")
    model = load(cfg) if load is not None else load_model(cfg.model, cfg.method)
    if cfg.compare.prompts and p.is_main:
        from tuneforge.inference.compare import answer_all, read_prompts

        p.compare_rows = read_prompts(cfg.compare.prompts)
        print(f"answering {len(p.compare_rows)} comparison prompts with the base model...")
        p.answers_before = answer_all(
            model, p.tokenizer, p.compare_rows, cfg.compare, p.chat_template, p.stop_tokens
        )
    p.model = wrap(model, cfg.method)
    p.parameters = count_parameters(p.model)


def _data_summary(data, prompt_truncation: str) -> str:
    s = data.stats
    return (
        f"data: {s.samples} samples, {s.tokens} tokens, {s.trained_summary}"
        + (f", {sum(s.dropped.values())} dropped" if s.dropped else "")
        + (
            f", {s.prompts_shortened} prompt{'s' * (s.prompts_shortened > 1)} shortened "
            f"(data.prompt_truncation={prompt_truncation})"
            if s.prompts_shortened
            else ""
        )
        + (f", {s.eval_samples} held out" if s.eval_samples else "")
        + (" (from cache)" if data.cache_hit else "")
        + "".join(f"\n  dropped: {example}" for example in s.dropped_examples)
    )
