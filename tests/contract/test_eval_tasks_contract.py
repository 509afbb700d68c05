"""Every eval task type (a module of tuneforge.eval.tasks) has the task shape and is in the schema."""

import typing

import pytest

from tuneforge.config.schema import TaskConfigUnion
from tuneforge.eval.tasks import TASKS
from tuneforge.eval.tasks._base import TaskConfig

EXPECTED = ["choice", "generate", "judge", "lm_eval", "perplexity"]


def test_registry_holds_the_documented_tasks():
    assert TASKS.names() == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_task_module_shape(name):
    module = TASKS.get(name)
    assert isinstance(module.DESCRIPTION, str) and module.DESCRIPTION
    assert issubclass(module.Config, TaskConfig) and callable(module.run)
    assert typing.get_args(module.Config.model_fields["name"].annotation) == (name,)
    assert module.Config in typing.get_args(typing.get_args(TaskConfigUnion)[0])
    for field, info in module.Config.model_fields.items():
        if field == "name":
            continue
        assert info.description, f"{name}.{field} has no description (it goes into docs/config.md)"
