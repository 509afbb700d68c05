"""Ctrl-C says what is true for the verb it stopped (each command module's `interrupted` hook), exit
code 130: train how to resume, serve that it stopped, chat nothing, export what each target holds,
sweep and bench how to continue; a verb without the hook says "interrupted"."""

from __future__ import annotations

import argparse

import pytest

from tests.helpers.runs import run_cli
from tuneforge import threads
from tuneforge.commands import COMMANDS


@pytest.fixture(autouse=True)
def _quiet_machine(monkeypatch):
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.0)  # no 0.1 s sample per start


def _interrupt(monkeypatch, verb: str, effect=None) -> None:
    def run(args):
        if effect:
            effect(args)
        raise KeyboardInterrupt

    monkeypatch.setattr(COMMANDS.get(verb), "run", run)


@pytest.mark.parametrize(
    "argv, says",
    [
        (
            ["train", "my config.yaml", "train.seed=3", "train.resume_from_checkpoint=x"],
            "interrupted; resume with train.resume_from_checkpoint=auto: tuneforge train 'my config.yaml' "
            "train.seed=3 train.resume_from_checkpoint=auto",
        ),
        (["serve", "runs/x"], "stopped"),
        (["chat", "runs/x"], ""),
        (["eval", "runs/x", "--tasks", "mmlu"], "interrupted; no report was written"),
        (["sweep", "c.yaml", "--grid", "train.seed=1,2"], "run the same tuneforge sweep command again"),
        (["bench", "methods", "c.yaml"], "run the same tuneforge bench methods command again"),
        (["data", "inspect", "c.yaml"], "interrupted"),
    ],
)
def test_each_verb_says_what_is_true_for_it(argv, says, monkeypatch, capsys):
    _interrupt(monkeypatch, argv[0])
    code, _, err = run_cli(capsys, *argv)
    last = err.splitlines()[-1] if err.strip() else ""
    assert code == 130
    assert (says in last) if says else last == "", err
    assert "resume_from_checkpoint" not in err or argv[0] == "train"


def test_an_interrupt_before_the_verb_runs_says_interrupted(monkeypatch, capsys):
    import tuneforge.cli as cli

    def parse_interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run", parse_interrupted)
    code, _, err = run_cli(capsys, "serve", "runs/x")
    assert code == 130 and err.splitlines()[-1] == "interrupted"


def _export_args(tmp_path, **kw) -> argparse.Namespace:
    base = dict(run_dir="r", merge=None, gguf=None, ollama=None, quant="f16")
    return argparse.Namespace(**{**base, **kw})


def test_an_interrupted_export_says_what_each_target_holds(tmp_path, monkeypatch, capsys):
    merged, gguf = tmp_path / "merged", tmp_path / "m.gguf"
    merged.mkdir()
    (merged / "tuneforge_export.json").write_text("{}")  # an earlier export, left as it was
    old = merged.stat().st_mtime

    def stop_while_writing_the_gguf(args):
        (tmp_path / "merged.tmp").mkdir()  # a previous crash's partial folder
        (tmp_path / "m.gguf.tmp").write_bytes(b"GGUF partial")
        args.started, args.done = old + 1, []

    _interrupt(monkeypatch, "export", stop_while_writing_the_gguf)
    code, _, err = run_cli(capsys, "export", "r", "--merge", str(merged), "--gguf", str(gguf))
    assert code == 130
    assert err.splitlines()[-1] == (
        f"export interrupted: {merged} left as it was; the partial merged.tmp was removed; "
        f"{gguf} not written; the partial m.gguf.tmp was removed"
    )
    assert not (tmp_path / "merged.tmp").exists() and not (tmp_path / "m.gguf.tmp").exists()
    assert (merged / "tuneforge_export.json").is_file()


def test_an_export_stopped_during_its_checks_says_so(tmp_path):
    interrupted = COMMANDS.get("export").interrupted
    out = tmp_path / "o"
    assert interrupted(_export_args(tmp_path, merge=str(out))) == "export interrupted; nothing was written"
    out.mkdir()
    args = _export_args(tmp_path, merge=str(out), ollama=str(tmp_path / "ol"))
    args.started, args.done = 0.0, []
    assert interrupted(args) == (
        f"export interrupted: {out} written but not checked (export again to check it); "
        f"{tmp_path / 'ol' / 'model-f16.gguf'} not written; {tmp_path / 'ol' / 'Modelfile'} not written"
    )
    args.done = [str(out)]
    assert interrupted(args).startswith(f"export interrupted: {out} finished; ")
