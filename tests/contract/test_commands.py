"""Every CLI verb (a module of tuneforge.commands) has the command shape and a working --help."""

import pytest

from tests.helpers.runs import run_cli
from tuneforge.cli import build_parser
from tuneforge.commands import COMMANDS


@pytest.mark.parametrize("name", COMMANDS.names())
def test_command_module_shape(name):
    module = COMMANDS.get(name)
    assert isinstance(module.HELP, str) and module.HELP
    assert callable(module.add_arguments) and callable(module.run)
    assert module.__doc__ and f"tuneforge {name}" in module.__doc__


@pytest.mark.parametrize("name", COMMANDS.names())
def test_every_verb_answers_help(name, capsys):
    code, out, _ = run_cli(capsys, name, "--help")
    assert code == 0
    assert COMMANDS.get(name).HELP.split(" (")[0] in " ".join(out.split())


def test_parser_lists_every_verb():
    sub = next(a for a in build_parser()._actions if a.dest == "verb")
    assert sorted(sub.choices) == COMMANDS.names()


def test_unknown_verb_is_a_usage_error(capsys):
    code, _, err = run_cli(capsys, "trian", "x.yaml")
    assert code == 2 and "invalid choice" in err


def test_ls_methods_lists_long_names_without_running_into_the_description(capsys):
    code, out, _ = run_cli(capsys, "ls", "methods")
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("prefix_tuning"))
    assert line.startswith("prefix_tuning  Prefix tuning")
    starts = {ln.index(ln.split()[1]) for ln in out.splitlines() if ln.strip()}
    assert len(starts) == 1  # every description starts in the same column


def test_ls_methods_markdown_prints_the_support_table(capsys):
    from tuneforge.methods import METHODS

    code, out, _ = run_cli(capsys, "ls", "methods", "--markdown")
    assert code == 0
    assert "| `qlora` | yes | yes | yes |" in out and "| `full` | no | no | no |" in out
    assert len([ln for ln in out.splitlines() if ln.startswith("| `")]) == len(METHODS.names())
    code, out, _ = run_cli(capsys, "ls", "stages", "--markdown")
    assert code == 0 and "| `dpo` | no | yes (unpadded) |" in out  # the speed table of docs/speed.md
    code, _, err = run_cli(capsys, "ls", "formats", "--markdown")
    assert code != 0 and "--markdown only applies to 'ls methods' and 'ls stages'" in err
