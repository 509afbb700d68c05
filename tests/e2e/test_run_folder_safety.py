"""The run folder is never a place to lose data: `output.overwrite` removes only what tuneforge
wrote, two runs never share a folder, a damaged newest checkpoint is skipped, a resume with other
data or method settings is refused, and train_loss covers every session of a resumed run.

The first half calls `tuneforge.artifacts.folder` directly; the second trains through the CLI on
the tiny Llama."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap

import pytest

from tests.helpers.runs import Crash, CrashAt, make_config, run_cli, write_alpaca, write_config
from tuneforge.artifacts.folder import LOCK, MARKER, check_run_dir, lock_holder, run_folder_lock
from tuneforge.artifacts.folder import write_config as write_run_config
from tuneforge.config.load import load_config
from tuneforge.errors import ConfigError


def _cfg(tmp_path, model_dir, run_dir, **output):
    raw = make_config(tmp_path, model_dir, write_alpaca(tmp_path / "d.json"))
    raw["output"].update(dir=str(run_dir), **output)
    return load_config(None, data=raw)


@pytest.fixture
def no_removal(monkeypatch):
    """A refusal must come before anything is removed."""

    def refuse(entry):
        raise AssertionError(f"{entry} removed")

    monkeypatch.setattr("tuneforge.artifacts.folder._remove", refuse)


def _run_folder(path, marker=True):
    path.mkdir(parents=True)
    (path / "config.yaml").write_text("model: {}\n")
    (path / "manifest.json").write_text("{}")
    (path / "adapter").mkdir()
    (path / "adapter" / "adapter_model.safetensors").write_bytes(b"x")
    (path / "checkpoint-2").mkdir()
    (path / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (path / "logs").mkdir()
    (path / "config.yaml.tmp").write_text("")
    if marker:
        (path / MARKER).write_text("{}")
    return path


# --- output.overwrite: what it refuses and what it removes ---------------------------------------


def test_overwrite_refuses_the_current_folder(tmp_path, tiny_llama_dir, monkeypatch, no_removal):
    here = tmp_path / "project"
    here.mkdir()
    (here / "notes.txt").write_text("mine")
    monkeypatch.chdir(here)
    with pytest.raises(
        ConfigError, match=r"^output.dir \. is the current folder; output.overwrite=true would"
    ):
        check_run_dir(_cfg(tmp_path, tiny_llama_dir, ".", overwrite=True))
    with pytest.raises(ConfigError, match="holds the current folder"):
        check_run_dir(_cfg(tmp_path, tiny_llama_dir, "..", overwrite=True))


def test_overwrite_refuses_home_and_filesystem_roots(tmp_path, tiny_llama_dir, monkeypatch, no_removal):
    home = _run_folder(tmp_path / "home")
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(ConfigError, match="is your home folder"):
        check_run_dir(_cfg(tmp_path, tiny_llama_dir, home, overwrite=True))
    with pytest.raises(ConfigError, match="is the root of a filesystem"):
        check_run_dir(_cfg(tmp_path, tiny_llama_dir, "/", overwrite=True))


def test_overwrite_refuses_a_folder_holding_the_config_or_the_data(tmp_path, tiny_llama_dir, no_removal):
    run = _run_folder(tmp_path / "run")
    cfg = _cfg(tmp_path, tiny_llama_dir, run, overwrite=True)
    with pytest.raises(ConfigError, match=f"holds the config file {run}/config.yaml being run"):
        check_run_dir(cfg, config_path=run / "config.yaml")
    data = write_alpaca(run / "data.json")
    raw = make_config(tmp_path, tiny_llama_dir, data)
    raw["output"].update(dir=str(run), overwrite=True)
    with pytest.raises(ConfigError, match=rf"holds {data} \(data.datasets.0.path\), which this run reads"):
        check_run_dir(load_config(None, data=raw))
    with pytest.raises(ConfigError, match=r"\(data file\)"):
        check_run_dir(cfg, data_paths=[data])


def test_overwrite_refuses_a_folder_tuneforge_did_not_make(tmp_path, tiny_llama_dir, no_removal):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"x")
    with pytest.raises(
        ConfigError, match=rf"output.dir {folder} is not a tuneforge run folder \(no .tuneforge-run"
    ):
        check_run_dir(_cfg(tmp_path, tiny_llama_dir, folder, overwrite=True))
    assert (folder / "cat.jpg").exists()


def test_overwrite_refuses_a_run_folder_holding_other_files_and_names_them(
    tmp_path, tiny_llama_dir, no_removal
):
    run = _run_folder(tmp_path / "run")
    (run / "notes.txt").write_text("mine")
    (run / "merged").mkdir()
    with pytest.raises(ConfigError) as e:
        check_run_dir(_cfg(tmp_path, tiny_llama_dir, run, overwrite=True))
    assert str(e.value).startswith(
        f"output.dir {run} holds merged/, notes.txt, which tuneforge did not write; "
    )
    assert "move those out, or choose another output.dir" in str(e.value)


@pytest.mark.parametrize("marker", [True, False], ids=["marked", "older-run"])
def test_overwrite_empties_a_run_folder_of_what_tuneforge_wrote(tmp_path, tiny_llama_dir, marker):
    run = _run_folder(tmp_path / "run", marker=marker)
    with run_folder_lock(run):
        check_run_dir(_cfg(tmp_path, tiny_llama_dir, run, overwrite=True))
        assert [p.name for p in run.iterdir()] == [LOCK]
    assert run.is_dir() and not any(run.iterdir())


def test_training_into_a_foreign_folder_never_replaces_its_files(tmp_path, tiny_llama_dir, no_removal):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "config.yaml").write_text("my: settings\n")
    (folder / "model").mkdir()
    with pytest.raises(
        ConfigError, match="is not a tuneforge run folder and holds config.yaml, model, which"
    ):
        check_run_dir(_cfg(tmp_path, tiny_llama_dir, folder))
    (folder / "config.yaml").unlink()
    (folder / "model").rmdir()
    (folder / "notes.txt").write_text("mine")
    assert check_run_dir(_cfg(tmp_path, tiny_llama_dir, folder)) == folder  # nothing it would replace
    sweep = tmp_path / "sweep" / "candidate"  # the candidate runner writes its log first
    sweep.mkdir(parents=True)
    (sweep / "train.log").write_text("$ tuneforge train ...\n")
    assert check_run_dir(_cfg(tmp_path, tiny_llama_dir, sweep)) == sweep


def test_the_marker_is_written_into_folders_tuneforge_makes(tmp_path, tiny_llama_dir):
    import tuneforge

    run = tmp_path / "run"
    write_run_config(_cfg(tmp_path, tiny_llama_dir, run), run)
    marker = json.loads((run / MARKER).read_text())
    assert marker["tuneforge_run"] == 1 and marker["tuneforge"] == tuneforge.__version__ and marker["created"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    write_run_config(_cfg(tmp_path, tiny_llama_dir, other), other)
    assert not (other / MARKER).exists()
    raw = make_config(tmp_path, tiny_llama_dir, write_alpaca(tmp_path / "d.json"))
    raw["data"]["template"] = "x" * 5000  # no string of the config is taken for a path blindly
    raw["output"]["dir"] = str(run)
    from tuneforge.artifacts.folder import input_paths

    assert [k for k, _ in input_paths(load_config(None, data=raw))] == [
        "model.name_or_path",
        "data.datasets.0.path",
    ]


# --- the run folder lock ---------------------------------------------------------------------------

HOLD = textwrap.dedent(
    """
    import sys, time
    from tuneforge.artifacts.folder import run_folder_lock
    with run_folder_lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(120)
    """
)


def test_a_second_run_into_a_locked_folder_is_refused(tmp_path, caplog):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError) as e:
            with run_folder_lock(run):
                pass
        msg = str(e.value)
        assert msg.startswith(
            f"output.dir {run} is in use by tuneforge train (pid {holder.pid} on {socket.gethostname()} since "
        )
        assert msg.endswith("; wait for it or choose another output.dir")
    finally:
        holder.kill()  # dies holding it: the lock file stays behind, stale
        holder.wait()
    assert lock_holder(run)["pid"] == holder.pid
    with caplog.at_level("INFO", logger="tuneforge"), run_folder_lock(run):
        assert lock_holder(run)["pid"] == os.getpid()
    assert f"pid {holder.pid} on {socket.gethostname()}" in caplog.text and "no longer running" in caplog.text
    assert not (run / LOCK).exists()


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path, caplog):
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(gone.stdout)
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK).write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": "then"}))
    with caplog.at_level("INFO", logger="tuneforge"), run_folder_lock(run):
        assert lock_holder(run)["pid"] == os.getpid()
    (line,) = [r.message for r in caplog.records if "taking over" in r.message]
    assert (
        line
        == f"output.dir {run}: tuneforge train (pid {pid} on {socket.gethostname()} since then) is no longer running; taking over its lock"
    )
    assert run.is_dir() and not (run / LOCK).exists()  # a folder that existed before stays


def test_a_lock_from_another_host_is_respected(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "then"}))
    with pytest.raises(
        ConfigError,
        match=rf"in use by tuneforge train \(pid 1 on elsewhere since then\).*delete {run}/\.lock",
    ):
        with run_folder_lock(run):
            pass


def test_the_lock_leaves_no_trace(tmp_path):
    run = tmp_path / "new" / "run"
    with pytest.raises(ConfigError):
        with run_folder_lock(run):
            assert (run / LOCK).is_file()
            raise ConfigError("refused")
    assert not run.exists()  # made for the lock and left empty: removed again


# --- through the CLI -----------------------------------------------------------------------------------


def _crash_at(monkeypatch, step: int):
    import tuneforge.stages._base as stage_base

    real = stage_base.build_causal_lm_trainer

    def crashing(ctx):
        trainer = real(ctx)
        trainer.add_callback(CrashAt(step))
        return trainer

    monkeypatch.setattr("tuneforge.stages.sft.build_trainer", crashing)


def _errors(err: str) -> list[str]:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert "Traceback" not in err, err
    return lines


def test_cli_overwrite_in_the_current_folder_keeps_its_files(tmp_path, tiny_llama_dir, capsys, monkeypatch):
    here = tmp_path / "project"
    here.mkdir()
    (here / "notes.txt").write_text("mine")
    path = write_config(tmp_path, make_config(tmp_path, tiny_llama_dir, write_alpaca(tmp_path / "d.json")))
    monkeypatch.chdir(here)
    code, _, err = run_cli(capsys, "train", str(path), "output.dir=.", "output.overwrite=true")
    assert code == 2 and len(_errors(err)) == 1 and "is the current folder" in err
    assert (here / "notes.txt").read_text() == "mine"


def test_cli_a_refused_or_failed_run_releases_its_folder(tmp_path, tiny_llama_dir, capsys):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "config.yaml").write_text("my: settings\n")
    cfg = make_config(tmp_path, tiny_llama_dir, write_alpaca(tmp_path / "d.json"))
    cfg["output"]["dir"] = str(folder)
    path = write_config(tmp_path, cfg)
    code, _, err = run_cli(capsys, "train", str(path))
    assert code == 2 and "is not a tuneforge run folder and holds config.yaml" in err
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml"]  # no lock left behind
    code, _, err = run_cli(capsys, "train", str(path), f"output.dir={tmp_path / 'run'}", "data.max_length=1")
    assert code == 2 and not (tmp_path / "run" / LOCK).exists()
    code, _, err = run_cli(capsys, "train", str(path), f"output.dir={tmp_path / 'run'}")
    assert code == 0, err


def test_cli_refuses_a_second_run_into_the_same_folder(tmp_path, tiny_llama_dir, capsys):
    path = write_config(tmp_path, make_config(tmp_path, tiny_llama_dir, write_alpaca(tmp_path / "d.json")))
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, err = run_cli(capsys, "train", str(path))
    finally:
        holder.kill()
        holder.wait()
    lines = _errors(err)
    assert code == 2 and len(lines) == 1 and f"is in use by tuneforge train (pid {holder.pid} on " in lines[0]
    assert not (run / "config.yaml").exists()


@pytest.fixture
def finished_then_unfinished(tmp_path, tiny_llama_dir, capsys):
    """A 4-step run (checkpoint-2, checkpoint-4) made unfinished again: its manifest removed."""
    cfg = make_config(tmp_path, tiny_llama_dir, write_alpaca(tmp_path / "d.json"))
    path = write_config(tmp_path, cfg)
    code, _, err = run_cli(capsys, "train", str(path))
    assert code == 0, err
    run = tmp_path / "run"
    (run / "manifest.json").unlink()
    return path, run


@pytest.mark.parametrize("target", ["adapter_model.safetensors", "optimizer.pt", "rng_state.pth"])
def test_cli_resume_skips_a_damaged_latest_checkpoint(finished_then_unfinished, capsys, caplog, target):
    path, run = finished_then_unfinished
    damaged = run / "checkpoint-4" / target
    damaged.write_bytes(damaged.read_bytes()[:100])
    with caplog.at_level("INFO", logger="tuneforge"):
        code, out, err = run_cli(capsys, "train", str(path), "train.resume_from_checkpoint=auto")
    assert code == 0, err
    said = out + err + caplog.text
    assert f"checkpoint-4 skipped: {target} is 100 bytes, " in said and "resuming from " in said
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["metrics"]["global_step"] == 4


def test_cli_resume_with_other_method_settings_is_refused(finished_then_unfinished, capsys):
    path, run = finished_then_unfinished
    code, _, err = run_cli(capsys, "train", str(path), "train.resume_from_checkpoint=auto", "method.r=8")
    assert code == 2, err
    (line,) = _errors(err)
    assert "checkpoint-4 was trained with other method settings (method.r: 4 -> 8)" in line
    assert "train.allow_changed_resume=true" in line


def test_cli_resume_with_other_data_is_refused_unless_allowed(
    finished_then_unfinished, capsys, caplog, tmp_path
):
    path, run = finished_then_unfinished
    shutil.rmtree(run / "checkpoint-4")  # resume from checkpoint-2, so steps are left to train
    other = write_alpaca(
        tmp_path / "other.json", [{"instruction": "Hi", "input": "", "output": "Hello there."}] * 8
    )
    override = f"data.datasets.0.path={other}"
    code, _, err = run_cli(capsys, "train", str(path), "train.resume_from_checkpoint=auto", override)
    assert code == 2, err
    (line,) = _errors(err)
    assert "checkpoint-2 was trained on data " in line and "(data.datasets changed)" in line
    with caplog.at_level("WARNING", logger="tuneforge"):
        code, out, err = run_cli(
            capsys,
            "train",
            str(path),
            "train.resume_from_checkpoint=auto",
            override,
            "train.allow_changed_resume=true",
        )
    assert code == 0, err
    assert "continuing (train.allow_changed_resume=true)" in out + err + caplog.text


def test_cli_train_loss_of_a_resumed_run_covers_every_step(tmp_path, tiny_llama_dir, capsys, monkeypatch):
    def config(name):
        cfg = make_config(tmp_path / name, tiny_llama_dir, write_alpaca(tmp_path / "d.json"))
        cfg["train"].update(per_device_train_batch_size=2, save_total_limit=None)
        (tmp_path / name).mkdir()  # where the config is written; the run goes into NAME/run
        return write_config(tmp_path / name, cfg)

    straight = config("straight")
    assert run_cli(capsys, "train", str(straight))[0] == 0
    crashed = config("crashed")
    _crash_at(monkeypatch, 3)
    with pytest.raises(Crash):
        run_cli(capsys, "train", str(crashed))
    monkeypatch.undo()
    assert (tmp_path / "crashed" / "run" / "checkpoint-2").is_dir()
    code, _, err = run_cli(capsys, "train", str(crashed), "train.resume_from_checkpoint=auto")
    assert code == 0, err
    a = json.loads((tmp_path / "straight" / "run" / "manifest.json").read_text())["metrics"]
    b = json.loads((tmp_path / "crashed" / "run" / "manifest.json").read_text())["metrics"]
    assert a["global_step"] == b["global_step"] == 4
    assert b["train_loss"] == pytest.approx(a["train_loss"], abs=1e-4)
