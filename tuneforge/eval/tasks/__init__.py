"""Eval task types, one module per `name` users write in a task file or the `eval:` section
(perplexity, generate, choice, judge, lm_eval); what a task module defines is `TaskModule` below.
Modules import nothing heavy at the top: the config schema imports this package to build the task
union."""

from __future__ import annotations

from tuneforge.eval.tasks._base import TaskConfig, TaskResult
from tuneforge.registry import Interface, Registry, optional


class TaskModule(Interface):
    """A module of `tuneforge.eval.tasks`: one task type, named by its file."""

    DESCRIPTION: str  # one line for `tuneforge ls tasks`
    Config: type[TaskConfig]  # the task's keys, with ``name: Literal["<file name>"]``

    def run(cfg, target) -> TaskResult:
        """The task's result for one side (``target``) of an evaluation."""

    @optional
    def combine(cfg, results: dict) -> dict:
        """Metrics that compare the two sides of a before/after evaluation (the pairwise judge);
        ``results`` maps side -> `TaskResult`."""

    helpers = (
        "read_rows",  # generate's, which judge imports
        "answer",
        "parse_score",  # judge's and lm_eval's parsers, tested on their own
        "parse_verdict",
        "flatten",
        "score_all",  # used inside their module only: to become private there
        "DEFAULT_RUBRIC",
        "RUBRIC_PROMPT",
        "PAIRWISE_PROMPT",
    )


TASKS = Registry("eval_tasks", "tuneforge.eval.tasks", interface=TaskModule)
