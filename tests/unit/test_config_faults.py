"""Bad config input gets one line that names the file, line or key and the fix (never a
traceback), and renamed keys keep old configs and run folders working (`tuneforge.config.deprecations`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml

from tests.helpers.runs import make_config, run_cli, write_alpaca, write_config
from tuneforge.config.deprecations import CONFIG_VERSION, RENAMES
from tuneforge.config.load import load_config
from tuneforge.errors import ConfigError, DataError

FIXTURE = Path(__file__).parents[1] / "fixtures" / "old_configs" / "config-v1.yaml"
BASE = {"model": {"name_or_path": "m"}, "data": {"datasets": [{"path": "d.json"}]}}


def _base() -> dict:
    return json.loads(json.dumps(BASE))


def test_a_config_that_is_not_utf8(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"model:\n  name_or_path: caf\xe9\n")
    with pytest.raises(
        ConfigError, match=r"c.yaml line 2: not UTF-8 text \(byte 0xe9\); save the file as UTF-8"
    ):
        load_config(path)


def test_a_key_given_twice_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  name_or_path: a\n  name_or_path: b\n")
    with pytest.raises(ConfigError, match=r"c.yaml line 3: .*key 'name_or_path' appears twice.*line 2"):
        load_config(path)


def test_deeply_nested_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: " + "[" * 20000 + "]" * 20000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(path)


def test_an_override_into_a_list_element(tmp_path):
    with pytest.raises(ConfigError, match="cannot set train.report_to.0.x: train.report_to.0 is a value"):
        load_config(None, ["train.report_to=[tensorboard]", "train.report_to.0.x=1"], data=_base())


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.bf16=true", "train.fp16=true"], "bf16 and fp16 are both true"),
        (["train.report_to=[wandbb]"], "train.report_to.*unknown logger 'wandbb': did you mean 'wandb'"),
        (["train.lr_scheduler_type=cosin"], "train.lr_scheduler_type.*unknown scheduler 'cosin'.*'cosine'"),
        (["train.seed=-1"], "train.seed = -1: Input should be greater than or equal to 0"),
        (["speed.keep_freed_memory=true", "speed.return_freed_memory=true"], "opposite things"),
        (["method.r=12"], r"method.name is required: say which one, e.g. method.name=lora"),
    ],
)
def test_values_that_cannot_work(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides, data=_base())


def test_each_is_one_line_on_the_command_line(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"model: \xff\n")
    code, out, err = run_cli(capsys, "train", str(path))
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err


def test_cache_dir_that_is_a_file_or_under_one(tmp_path, tiny_llama_dir, capsys):
    data = write_alpaca(tmp_path / "d.json")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for cache in (blocker, blocker / "sub"):
        cfg = make_config(tmp_path, tiny_llama_dir, data, data={"cache_dir": str(cache)})
        code, _, err = run_cli(capsys, "data", "inspect", str(write_config(tmp_path, cfg)))
        assert code == 2 and err.count("\n") == 1, err
        assert "data.cache_dir" in err or "cannot write the data cache" in err, err
    with pytest.raises(DataError, match="is a file, not a folder"):
        from tuneforge.data.pipeline import cache_root

        cache_root(load_config(None, [f"data.cache_dir={blocker}"], data=_base()))


def test_old_key_names_still_work_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="tuneforge"):
        cfg = load_config(None, ["train.packing=true", "train.distributed=zero2"], data=_base())
    assert cfg.speed.packing is True and cfg.scale.engine == "zero2"
    assert "train.packing is now speed.packing" in caplog.text
    assert "train.distributed is now scale.engine" in caplog.text
    with pytest.raises(ConfigError, match="both train.packing .* and speed.packing are set"):
        load_config(None, ["train.packing=true", "speed.packing=false"], data=_base())
    with pytest.raises(ConfigError, match="written by a newer tuneforge"):
        load_config(None, [f"config_version={CONFIG_VERSION + 1}"], data=_base())


def test_every_rename_lands_on_a_real_key():
    from tuneforge.config.schema import Config

    for _, old, new in RENAMES:
        section, key = new.split(".")
        assert key in Config.model_fields[section].annotation.model_fields, new
        assert old.split(".")[1] not in Config.model_fields[old.split(".")[0]].annotation.model_fields, old


def _run_folder(tmp_path: Path, config_text: str) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(config_text)
    (run / "manifest.json").write_text(json.dumps({"artifact": "adapter", "stop_tokens": []}))
    return run


def test_a_run_folder_written_before_config_version_loads(tmp_path, caplog):
    from tuneforge.artifacts import read_run

    run = _run_folder(tmp_path, FIXTURE.read_text())
    with caplog.at_level(logging.WARNING, logger="tuneforge"):
        cfg, _ = read_run(run)
    assert cfg.speed.packing is True and cfg.speed.huge_pages is False
    assert cfg.scale.nproc_per_node == 2 and cfg.scale.engine == "zero2"
    assert cfg.method.r == 16
    assert caplog.text == ""  # a run folder's own file is upgraded silently


def test_a_run_folder_written_today_survives_a_later_rename(tmp_path, monkeypatch):
    """Today's run folder records its config_version; a later version that renames a key (here
    train.learning_rate -> train.peak_learning_rate) maps the old key when it loads the folder."""
    from pydantic import create_model

    from tuneforge.artifacts import read_run
    from tuneforge.artifacts.folder import write_config
    from tuneforge.config import deprecations, load, schema

    today = load_config(None, ["train.learning_rate=3e-4", "method={name: lora, r: 12}"], data=_base())
    folder = tmp_path / "today"
    write_config(today, folder)
    assert yaml.safe_load((folder / "config.yaml").read_text())["config_version"] == CONFIG_VERSION

    train_fields = dict(schema.TrainConfig.model_fields)
    lr = train_fields.pop("learning_rate")
    later_train = create_model(
        "TrainConfig", __base__=schema.Section, peak_learning_rate=(float, lr),
        **{k: (v.annotation, v) for k, v in train_fields.items()},
    )  # fmt: skip
    later = {k: (v.annotation, v) for k, v in schema.Config.model_fields.items() if k != "train"}
    later_config = create_model(
        "Config", __base__=schema.Section, train=(later_train, later_train()), **later
    )
    monkeypatch.setattr(load, "Config", later_config)
    monkeypatch.setattr(deprecations, "CONFIG_VERSION", CONFIG_VERSION + 1)
    monkeypatch.setattr(
        deprecations,
        "RENAMES",
        [*RENAMES, (CONFIG_VERSION + 1, "train.learning_rate", "train.peak_learning_rate")],
    )
    run = _run_folder(tmp_path, (folder / "config.yaml").read_text())
    cfg, _ = read_run(run)
    assert cfg.train.peak_learning_rate == 3e-4 and cfg.method.r == 12


def test_output_dir_that_is_a_file_or_cannot_be_written(tmp_path, tiny_llama_dir, capsys):
    data = write_alpaca(tmp_path / "d.json")
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me")
    for out, says in ((blocker, "is a file, not a folder"), (blocker / "run", "cannot be written")):
        cfg = make_config(tmp_path, tiny_llama_dir, data, output={"dir": str(out)})
        code, _, err = run_cli(capsys, "train", str(write_config(tmp_path, cfg)))
        assert code == 2 and err.count("\n") == 1 and says in err, err
    assert blocker.read_text() == "keep me"
