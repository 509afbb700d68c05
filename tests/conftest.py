"""Shared fixtures: the real SmolLM2 tokenizer (tests/fixtures) and tiny random Llama and Qwen2
models built once per session with it. Everything is offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
TOKENIZER_DIR = FIXTURES / "smollm2-tokenizer"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: longer tests (real model); run by default")
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU; skipped without one")
    config.addinivalue_line(
        "markers", "browser: drives `tuneforge ui` in chromium; run alone with -m browser"
    )


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own tuneforge cache unless it sets one."""
    monkeypatch.setenv("TUNEFORGE_CACHE", str(tmp_path_factory.getbasetemp() / "tf-cache"))


@pytest.fixture(scope="session")
def tokenizer_dir() -> Path:
    return TOKENIZER_DIR


@pytest.fixture(scope="session")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TOKENIZER_DIR)


def _build(kind: str, out: Path, tokenizer) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    if kind == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    else:  # qwen2 has attention biases, which BitFit-style methods need
        model = Qwen2ForCausalLM(Qwen2Config(**common))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, tokenizer) -> Path:
    return _build("llama", tmp_path_factory.mktemp("tiny-llama"), tokenizer)


@pytest.fixture(scope="session")
def tiny_qwen2_dir(tmp_path_factory, tokenizer) -> Path:
    return _build("qwen2", tmp_path_factory.mktemp("tiny-qwen2"), tokenizer)


@pytest.fixture(params=["llama", "qwen2"])
def tiny_model_dir(request) -> Path:
    return request.getfixturevalue(f"tiny_{request.param}_dir")


@pytest.fixture
def ui_project(tmp_path) -> Path:
    """A project folder for `tuneforge ui` (tests/helpers/ui.py): data and an eval task file."""
    from tests.helpers.ui import make_project

    return make_project(tmp_path / "project")


@pytest.fixture
def ui_client(ui_project):
    """Starlette's test client on `tuneforge ui`'s app for ``ui_project``, open (no token)."""
    pytest.importorskip("jinja2")
    from starlette.testclient import TestClient

    from tuneforge.ui.app import build_app

    return TestClient(build_app(ui_project, "runs", None))
