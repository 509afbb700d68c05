"""Eval task types, one module per `name` users write in a task file or the `eval:` section
(perplexity, generate, choice, judge, lm_eval). Each module defines ``DESCRIPTION``, a pydantic
``Config`` (subclass of `TaskConfig`, ``name: Literal["<file name>"]``) and
``run(cfg, target) -> TaskResult``; a task that compares the two sides of a before/after evaluation
(the pairwise judge) also defines ``combine(cfg, results) -> dict``. Modules import nothing heavy at
the top: the config schema imports this package to build the task union."""

from __future__ import annotations

from tuneforge.registry import Registry

TASKS = Registry("eval_tasks", "tuneforge.eval.tasks")
