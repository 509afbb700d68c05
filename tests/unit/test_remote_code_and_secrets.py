"""What a shared file must not be able to do: run a model's own Python code (a run folder's
config.yaml setting model.trust_remote_code) or send any environment variable to any URL (a judge's
api_key_env); and truncated weight files, which must be a one-line error naming the file."""

from __future__ import annotations

import json
import logging
import shutil
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml

from tests.helpers.runs import http_server, reply_chat, run_cli
from tests.helpers.serving import write_fake_run
from tuneforge.config.schema import ModelConfig
from tuneforge.errors import ConfigError, ModelError
from tuneforge.methods import METHODS

FULL = METHODS.get("full").Config()

# --- remote code --------------------------------------------------------------------------------

MODELING = """
from pathlib import Path

Path({marker!r}).write_text("the model's own code ran")

from transformers import LlamaForCausalLM


class CustomLlamaForCausalLM(LlamaForCausalLM):
    pass
"""


@pytest.fixture
def custom_code_model(tmp_path, tiny_llama_dir) -> tuple[Path, Path]:
    """(a model folder whose config.json auto_maps to its own modeling file, the file that module
    writes when it is imported)."""
    folder = tmp_path / f"custom-{tmp_path.name}"  # a module name of its own for every test
    shutil.copytree(tiny_llama_dir, folder)
    marker = tmp_path / "remote-code-ran"
    (folder / "custom_modeling.py").write_text(MODELING.format(marker=str(marker)))
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "custom_modeling.CustomLlamaForCausalLM"}
    (folder / "config.json").write_text(json.dumps(config))
    return folder, marker


def _refusal(run: Path) -> str:
    return (
        f"error: {run}/config.yaml sets model.trust_remote_code: true; remote code runs only when you ask "
        "for it: add --trust-remote-code to this command\n"
    )


def test_the_fixture_model_runs_its_code_only_when_trusted(custom_code_model):
    from tuneforge.models.load import load_model

    folder, marker = custom_code_model
    assert type(load_model(ModelConfig(name_or_path=str(folder)), FULL)).__name__ == "LlamaForCausalLM"
    assert not marker.exists()
    trusted = load_model(ModelConfig(name_or_path=str(folder), trust_remote_code=True), FULL)
    assert type(trusted).__name__ == "CustomLlamaForCausalLM" and marker.exists()


def test_check_remote_code():
    from tuneforge.models.load import check_remote_code

    check_remote_code(False, False, "c.yaml")
    check_remote_code(True, True, "c.yaml")
    check_remote_code(False, True, "c.yaml")
    with pytest.raises(ConfigError, match="^c.yaml sets model.trust_remote_code: true; remote code runs"):
        check_remote_code(True, False, "c.yaml")


@pytest.mark.parametrize("artifact", ["full", "adapter"])
def test_chat_serve_eval_export_refuse_a_run_that_trusts_itself(
    custom_code_model, tmp_path, capsys, artifact
):
    folder, marker = custom_code_model
    run = write_fake_run(tmp_path / "run", folder, artifact=artifact, trust_remote_code=True)
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text(yaml.safe_dump({"tasks": [{"name": "perplexity", "path": str(tmp_path / "d.json")}]}))
    commands = [
        ["chat", str(run), "--prompt", "hi"],
        ["serve", str(run)],
        ["serve", str(folder), "--adapter", f"other={run}"],
        ["eval", str(run), "--tasks", str(tasks)],
        ["export", str(run), "--merge", str(tmp_path / "merged")],
        ["export", str(run), "--gguf", str(tmp_path / "m.gguf")],
    ]
    for argv in commands:
        code, _, err = run_cli(capsys, *argv)
        assert (code, err) == (2, _refusal(run)), argv
    assert not marker.exists(), "the run folder's own code ran"


def test_read_run_takes_the_commands_flag_not_the_files_value(custom_code_model, tmp_path):
    from tuneforge.artifacts import read_run

    folder, _ = custom_code_model
    trusting = write_fake_run(tmp_path / "a", folder, trust_remote_code=True)
    plain = write_fake_run(tmp_path / "b", folder)
    assert read_run(trusting, trust_remote_code=True)[0].model.trust_remote_code is True
    assert read_run(plain)[0].model.trust_remote_code is False
    assert read_run(plain, trust_remote_code=True)[0].model.trust_remote_code is True


def test_chat_with_the_flag_runs_the_models_code(custom_code_model, tmp_path, capsys):
    folder, marker = custom_code_model
    run = write_fake_run(tmp_path / "run", folder, artifact="full", trust_remote_code=True)
    code, out, err = run_cli(
        capsys, "chat", str(run), "--prompt", "hi", "--max-new-tokens", "2", "--trust-remote-code"
    )
    assert code == 0, err
    assert marker.exists()


def test_chat_runs_a_model_folders_code_only_with_the_flag(custom_code_model, capsys):
    folder, marker = custom_code_model
    code, out, err = run_cli(capsys, "chat", str(folder), "--prompt", "hi", "--max-new-tokens", "2")
    assert code == 0, err
    assert not marker.exists(), "the model folder's own code ran without --trust-remote-code"
    argv = ["chat", str(folder), "--prompt", "hi", "--max-new-tokens", "2", "--trust-remote-code"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert marker.exists()


def test_serve_loads_a_model_folders_code_only_with_the_flag(custom_code_model):
    from tuneforge.serve import build_catalog
    from tuneforge.serve.backends import TransformersBackend

    folder, marker = custom_code_model
    backend = TransformersBackend(build_catalog(str(folder)))
    assert type(backend.model).__name__ == "LlamaForCausalLM" and not marker.exists()
    backend = TransformersBackend(build_catalog(str(folder), trust_remote_code=True))
    assert type(backend.model).__name__ == "CustomLlamaForCausalLM" and marker.exists()


# --- API keys from the environment ---------------------------------------------------------------

EVENTS: list[str] = []


class _Judge(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        EVENTS.append(f"request auth={self.headers.get('Authorization')}")
        reply_chat(self, "Score: 7")

    def log_message(self, *args):
        pass


@pytest.fixture
def judge_url(monkeypatch):
    import tuneforge.inference.judge as client

    monkeypatch.setattr(client, "_announced", set(), raising=False)
    monkeypatch.delenv("TUNEFORGE_ALLOWED_KEY_ENV", raising=False)
    EVENTS.clear()
    with http_server(_Judge) as url:
        yield url


def _judge_task(url: str, key_env: str):
    from tuneforge.eval.runner import parse_tasks

    raw = [{"name": "judge", "path": "x.jsonl", "endpoint": url, "judge_model": "j", "api_key_env": key_env}]
    return parse_tasks(raw, "t")[0]


@pytest.mark.parametrize("name", ["AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "_API_KEY", "openai_api_key"])
def test_a_variable_not_named_as_an_api_key_is_never_read(judge_url, monkeypatch, name):
    from tuneforge.eval.tasks import judge as judge_task
    from tuneforge.rewards.build import build_rewards
    from tuneforge.rewards.config import RewardConfig

    monkeypatch.setenv(name, "secret")
    with pytest.raises(ConfigError) as err:
        build_rewards([RewardConfig(judge=judge_url, api_key_env=name)])
    message = str(err.value)
    assert message.startswith(f"stage.reward_funcs[0].api_key_env {name!r}: only environment variables")
    assert "_API_KEY" in message and "TUNEFORGE_ALLOWED_KEY_ENV" in message and "\n" not in message
    task = _judge_task(judge_url, name)
    with pytest.raises(ConfigError, match=f"eval task 'judge': api_key_env {name!r}"):
        judge_task.run(task, target=None)  # before any answer is generated
    with pytest.raises(ConfigError, match="only environment variables"):
        judge_task._ask(task, ["a"])
    assert EVENTS == []


def test_a_variable_listed_in_tuneforge_allowed_key_env_is_read(judge_url, monkeypatch):
    from tuneforge.eval.tasks import judge as judge_task

    monkeypatch.setenv("TUNEFORGE_ALLOWED_KEY_ENV", "OTHER, MY_TOKEN")
    monkeypatch.setenv("MY_TOKEN", "sk-mine")
    assert judge_task._ask(_judge_task(judge_url, "MY_TOKEN"), ["a"]) == ["Score: 7"]
    assert EVENTS == ["request auth=Bearer sk-mine"]


def test_the_judges_host_is_announced_once_before_the_first_request(judge_url, monkeypatch, caplog):
    from tuneforge.rewards.build import build_rewards
    from tuneforge.rewards.config import RewardConfig

    class Record(logging.Handler):
        def emit(self, record):
            EVENTS.append(f"log {record.name}: {record.getMessage()}")

    monkeypatch.setenv("JUDGE_API_KEY", "sk-test")
    logger = logging.getLogger("tuneforge")
    handler = Record(level=logging.INFO)
    logger.addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="tuneforge"):
            (judge,), _, _ = build_rewards([RewardConfig(judge=judge_url, api_key_env="JUDGE_API_KEY")])
            assert EVENTS == []  # nothing sent, nothing said, before the first call
            for _ in range(2):
                judge(prompts=["p"], completions=["42"], question=["q"], answer=[None])
    finally:
        logger.removeHandler(handler)
    host = judge_url.removeprefix("http://").removesuffix("/v1")
    assert EVENTS == [
        f"log tuneforge: judge: sending requests to {host} (key from $JUDGE_API_KEY)",
        "request auth=Bearer sk-test",
        "request auth=Bearer sk-test",
    ]


# --- truncated weight files ----------------------------------------------------------------------


def _cut(path: Path, fraction: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def _assert_damaged(err, path: Path) -> None:
    message = str(err.value)
    assert str(path) in message and "damaged or incomplete" in message, message
    assert "re-download or re-export it" in message and "\n" not in message


@pytest.mark.parametrize("fraction", [0.5, 0.999, 0.0001])
def test_a_truncated_safetensors_file_is_a_one_line_model_error(tiny_llama_dir, tmp_path, fraction):
    from tuneforge.models.load import load_model

    folder = tmp_path / "cut"
    shutil.copytree(tiny_llama_dir, folder)
    _cut(folder / "model.safetensors", fraction)
    with pytest.raises(ModelError) as err:
        load_model(ModelConfig(name_or_path=str(folder)), FULL)
    _assert_damaged(err, folder / "model.safetensors")


def test_a_run_with_a_truncated_model_or_adapter_is_a_one_line_model_error(tiny_llama_dir, tmp_path):
    from tuneforge.artifacts import load_run

    full = write_fake_run(tmp_path / "full", tiny_llama_dir, artifact="full")
    _cut(full / "model" / "model.safetensors", 0.5)
    with pytest.raises(ModelError) as err:
        load_run(full)
    _assert_damaged(err, full / "model" / "model.safetensors")
    adapter = write_fake_run(tmp_path / "adapter", tiny_llama_dir)
    (adapter / "adapter").mkdir()
    shutil.copy(tiny_llama_dir / "model.safetensors", adapter / "adapter" / "adapter_model.safetensors")
    _cut(adapter / "adapter" / "adapter_model.safetensors", 0.3)
    with pytest.raises(ModelError) as err:
        load_run(adapter)
    _assert_damaged(err, adapter / "adapter" / "adapter_model.safetensors")


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory, tiny_llama_dir) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuneforge.export.gguf import write_gguf

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    write_gguf(model, tok, tok.chat_template, ["<|im_end|>"], path, "f16", "tiny")
    return path


@pytest.mark.parametrize("fraction", [0.5, 0.999, 0.01])
def test_a_truncated_gguf_file_is_a_one_line_model_error(tiny_gguf, tmp_path, fraction):
    from tuneforge.models import gguf
    from tuneforge.models.load import resolve_model_source

    gguf.check_complete(tiny_gguf)  # the whole file passes
    cut = tmp_path / "cut.gguf"
    shutil.copy(tiny_gguf, cut)
    _cut(cut, fraction)
    with pytest.raises(ModelError) as err:
        resolve_model_source(ModelConfig(name_or_path=str(cut)))
    _assert_damaged(err, cut)
