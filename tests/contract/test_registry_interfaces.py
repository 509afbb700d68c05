"""Every registry entry fits its registry's interface (`tuneforge.registry.Interface`): the required
names present, typed and callable as the registry calls them, and no public name the interface
does not list. A plugin that misspells a hook, lacks a name or takes the wrong arguments is refused
when the registry loads it."""

from __future__ import annotations

import importlib
import sys
import textwrap
import types

import pytest

from tuneforge.commands import COMMANDS
from tuneforge.data.formats import FORMATS
from tuneforge.data.kinds import SAMPLE_KINDS
from tuneforge.data.templates import TEMPLATES
from tuneforge.errors import ConfigError
from tuneforge.eval.tasks import TASKS
from tuneforge.generate.recipes import RECIPES
from tuneforge.methods import METHODS, MethodModule
from tuneforge.registry import Interface, Registry, defined_names, optional
from tuneforge.stages import STAGES

REGISTRIES = {
    r.kind: r for r in (METHODS, STAGES, FORMATS, TEMPLATES, SAMPLE_KINDS, TASKS, COMMANDS, RECIPES)
}
ENTRIES = [(kind, name) for kind, reg in REGISTRIES.items() if reg.interface for name in reg.names()]

# a method plugin that fits MethodModule; each test below breaks one thing in it
GOOD_METHOD = """
import logging

from tuneforge.data.render import IGNORE_INDEX
from tuneforge.methods._base import MethodConfig, no_load_kwargs

log = logging.getLogger(__name__)
DESCRIPTION = "a third-party method"
SUPPORTS = {"quantized_base": False, "merge": False, "multi_adapter": False}


class Config(MethodConfig):
    name: str = "acme"


load_kwargs = no_load_kwargs


def apply(model, cfg):
    return model


def callbacks(cfg, model):
    return []
"""


def test_every_registry_has_an_interface():
    assert [kind for kind, reg in REGISTRIES.items() if reg.interface is None] == []


@pytest.mark.parametrize("kind, name", ENTRIES)
def test_entry_fits_its_interface_and_defines_no_stray_names(kind, name):
    registry = REGISTRIES[kind]
    assert registry.interface.problems(registry.get(name)) == []


@pytest.mark.parametrize("kind", [k for k, r in REGISTRIES.items() if r.interface])
def test_every_listed_helper_is_defined_by_an_entry(kind):
    registry = REGISTRIES[kind]
    defined = {n for m in registry.modules() for n in defined_names(m)}
    assert set(registry.interface.helpers) <= defined, "drop helpers no entry defines any more"


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """``plugin(source)``: a registry over tuneforge.methods plus one third-party entry, 'acme', whose
    module is ``source`` (a file of a package on sys.path) or a module object."""
    package = f"acme_{tmp_path.name}"
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(source: str | types.ModuleType) -> Registry:
        if isinstance(source, str):
            (tmp_path / package).mkdir()
            (tmp_path / package / "__init__.py").write_text("")
            (tmp_path / package / "method.py").write_text(textwrap.dedent(source))
            importlib.invalidate_caches()
            module = importlib.import_module(f"{package}.method")
        else:
            module = source
        dist = types.SimpleNamespace(name="acme-tuneforge")
        entry = types.SimpleNamespace(name="acme", dist=dist, load=lambda: module)
        monkeypatch.setattr(
            "tuneforge.registry.entry_points", lambda group: [entry] if group == "tuneforge.methods" else []
        )
        return Registry("methods", "tuneforge.methods", interface=MethodModule)

    yield make
    for name in [n for n in sys.modules if n == package or n.startswith(f"{package}.")]:
        del sys.modules[name]


def test_a_plugin_that_fits_loads(plugin):
    registry = plugin(GOOD_METHOD)
    module = registry.get("acme")
    # imported names, the logger and the renamed load_kwargs are not strays
    assert MethodModule.problems(module) == []
    assert registry.hook("acme", "callbacks") is module.callbacks
    assert registry.hook("acme", "final_model") is None


def test_a_misspelt_hook_is_refused_with_the_name_it_meant(plugin):
    module = types.ModuleType("acme_tuneforge.method")
    exec(GOOD_METHOD.replace("def callbacks(", "def callback("), vars(module))
    with pytest.raises(ConfigError) as err:
        plugin(module).names()
    message = str(err.value)
    assert "methods 'acme' from package acme-tuneforge (acme_tuneforge.method)" in message
    assert "defines 'callback', not a name of MethodModule (did you mean 'callbacks'?)" in message


def test_a_misspelt_constant_is_refused(plugin):
    with pytest.raises(ConfigError, match=r"lacks 'SUPPORTS'.*defines 'SUPORTS'.*did you mean 'SUPPORTS'"):
        plugin(GOOD_METHOD.replace("SUPPORTS =", "SUPORTS =")).names()


def test_a_missing_required_name_is_refused(plugin):
    source = GOOD_METHOD.replace("def apply(model, cfg):\n    return model\n", "")
    with pytest.raises(
        ConfigError, match=r"methods 'acme' .* does not fit tuneforge\.methods\.MethodModule: lacks 'apply'"
    ):
        plugin(source).names()


def test_a_hook_with_the_wrong_arguments_or_a_value_of_the_wrong_type_is_refused(plugin):
    source = GOOD_METHOD.replace("def callbacks(cfg, model):", "def callbacks(cfg):")
    source = source.replace('DESCRIPTION = "a third-party method"', "DESCRIPTION = 3")
    with pytest.raises(ConfigError) as err:
        plugin(source).names()
    assert "'DESCRIPTION' is 3, not str" in str(err.value)
    assert "callbacks(cfg) cannot be called as callbacks(cfg, model)" in str(err.value)


def test_hooks_that_go_together_are_refused_alone(plugin):
    source = GOOD_METHOD + "\n\ndef save_adapter(model, cfg, directory):\n    pass\n"
    with pytest.raises(ConfigError, match="defines 'save_adapter' but not 'load_adapter'"):
        plugin(source).names()


def test_a_helper_loads_but_the_contract_suite_rejects_it(plugin):
    registry = plugin(GOOD_METHOD + "\n\ndef build_prompt_cache(model):\n    return {}\n")
    (problem,) = MethodModule.problems(registry.get("acme"))
    assert problem.startswith("defines 'build_prompt_cache', not a name of MethodModule; if it is a helper")


class _Widget(Interface):
    NAME: str
    LIMIT: int = 3

    def run(args) -> int: ...

    @optional
    def required(args) -> list: ...  # an interface name may be one of Interface's own


def test_an_interface_lists_required_and_optional_names_and_gives_defaults():
    module = types.SimpleNamespace(NAME="w", run=lambda args: 0)
    assert _Widget.names() == ["NAME", "LIMIT", "run", "required"]
    assert _Widget.required() == ["NAME", "run"]
    assert _Widget.hook(module, "LIMIT") == 3 and _Widget.hook(module, "required") is None
    with pytest.raises(LookupError, match="'limit' is not a name of _Widget: did you mean 'LIMIT'"):
        _Widget.hook(module, "limit")


def test_reading_a_hook_the_interface_lacks_fails():
    with pytest.raises(LookupError, match="did you mean 'callbacks'"):
        METHODS.hook("lora", "callback")
