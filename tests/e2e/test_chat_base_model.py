"""`tuneforge chat` on a plain model (an HF folder, a .gguf file) as well as a run: its own chat
template or --template, the "loading" line, sampling options honoured or refused in one line, and
a GGUF converted once, its later calls reading neither the conversion nor the file again."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from tests.helpers.runs import run_cli
from tests.helpers.serving import write_fake_run

HI = "What is your name?"


def _chat(capsys, *argv: str) -> tuple[int, str, str]:
    return run_cli(capsys, "chat", *argv)


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def _greedy(model_dir, messages, n: int) -> str:
    """What plain transformers answers greedily with the tokenizer's own chat template."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    ids = tok.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )["input_ids"]
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=n,
            do_sample=False,
            eos_token_id=[tok.convert_tokens_to_ids("<|im_end|>"), tok.eos_token_id],
            pad_token_id=tok.pad_token_id,
        )
    return tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()


def test_chat_with_a_base_model_folder_uses_its_own_template(tiny_llama_dir, capsys):
    code, out, err = _chat(capsys, str(tiny_llama_dir), "--prompt", HI, "--max-new-tokens", "6")
    assert code == 0, err
    assert out.strip() == _greedy(tiny_llama_dir, [{"role": "user", "content": HI}], 6)
    assert f"loading {tiny_llama_dir} …" in err.splitlines()


def test_a_model_without_a_chat_template_asks_for_one(tiny_llama_dir, tmp_path, capsys):
    bare = tmp_path / "bare"
    shutil.copytree(tiny_llama_dir, bare)
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((bare / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(config))

    code, _, err = _chat(capsys, str(bare), "--prompt", HI)
    assert code == 2 and len(_errors(err)) == 1, err
    assert "has no chat template of its own" in err and "--template NAME (" in err

    code, out, err = _chat(
        capsys, str(bare), "--prompt", HI, "--template", "default", "--max-new-tokens", "3"
    )
    assert code == 0, err

    code, _, err = _chat(capsys, str(bare), "--prompt", HI, "--template", "chatlm")
    assert code == 2 and len(_errors(err)) == 1, err
    assert (
        _errors(err)[0].startswith("error: --template 'chatlm': did you mean 'chatml'")
        and "loading" not in err
    )


def test_what_is_neither_a_run_nor_a_model_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "ggufs").mkdir()
    (tmp_path / "ggufs" / "m.gguf").write_bytes(b"GGUF")
    for source, message in [
        (
            tmp_path / "empty",
            f"error: {tmp_path / 'empty'} is neither a finished tuneforge run (no manifest.json)",
        ),
        (
            tmp_path / "ggufs",
            f"it holds GGUF files: chat with one, e.g. tuneforge chat {tmp_path / 'ggufs' / 'm.gguf'}",
        ),
        (
            tmp_path / "nosuch",
            f"error: {tmp_path / 'nosuch'} does not exist (looked at {tmp_path / 'nosuch'}); give a",
        ),
    ]:
        code, out, err = _chat(capsys, str(source), "--prompt", HI)
        assert code == 2 and len(_errors(err)) == 1 and message in _errors(err)[0], err
        assert "loading" not in err


def test_a_run_keeps_the_template_it_trained_with(tiny_llama_dir, tmp_path, capsys):
    run = write_fake_run(tmp_path / "run", tiny_llama_dir, artifact="full")
    code, _, err = _chat(capsys, str(run), "--prompt", HI, "--template", "chatml")
    assert code == 2 and len(_errors(err)) == 1, err
    assert "is a run, which chats with the template it trained with" in err


def test_sampling_options_are_honoured(tiny_llama_dir, capsys):
    """A tiny random model's next-token distribution is near uniform over 49k tokens: two seeds
    drawing the same 8 tokens would mean nothing was drawn."""

    def answer(*extra: str) -> str:
        code, out, err = _chat(capsys, str(tiny_llama_dir), "--prompt", HI, "--max-new-tokens", "8", *extra)
        assert code == 0, err
        return out.strip()

    state = torch.random.get_rng_state()
    first = answer("--temperature", "1.0", "--seed", "1")
    assert torch.equal(torch.random.get_rng_state(), state), "sampling changed the caller's random state"
    assert answer("--temperature", "1.0", "--seed", "1") == first
    assert answer("--temperature", "1.0", "--seed", "2") != first
    assert answer("--temperature", "1.0", "--top-p", "0.5", "--seed", "1") != first
    assert answer("--temperature", "1.0") != answer("--temperature", "1.0")  # no seed: fresh draws
    assert answer() == answer()  # greedy


def test_interactive_chat_samples_too(tiny_llama_dir, capsys, monkeypatch):
    def conversation(*extra: str) -> str:
        inputs = iter(["hello", "again", "/exit"])
        monkeypatch.setattr("builtins.input", lambda prompt="": next(inputs))
        code, out, err = _chat(capsys, str(tiny_llama_dir), "--max-new-tokens", "6", *extra)
        assert code == 0, err
        assert out.startswith(f"chatting with {tiny_llama_dir} (a plain model, its own chat template)")
        return out

    first = conversation("--temperature", "1.0", "--seed", "1")
    assert first.count("model> ") == 2
    assert conversation("--temperature", "1.0", "--seed", "1") == first
    assert conversation("--temperature", "1.0", "--seed", "2") != first


def test_sampling_reaches_generate(monkeypatch):
    from tuneforge.inference.generate import Sampling, generate_answers

    seen = {}

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def generate(self, input_ids, **kwargs):
            seen.update(kwargs)
            return torch.cat([input_ids, torch.tensor([[5]])], dim=1)

    class Tok:
        eos_token_id, pad_token_id, unk_token_id = 2, 0, None

        def convert_tokens_to_ids(self, tok):
            return 2

        def decode(self, ids, skip_special_tokens=True):
            return "ok"

    monkeypatch.setattr("tuneforge.inference.generate.prompt_ids", lambda *a: [1, 3])
    sampling = Sampling(temperature=0.7, top_p=0.9, seed=4)
    assert generate_answers(Model(), Tok(), [[{"role": "user", "content": "hi"}]], sampling=sampling) == [
        "ok"
    ]
    assert (seen["do_sample"], seen["temperature"], seen["top_p"], seen["top_k"]) == (True, 0.7, 0.9, 0)
    seen.clear()
    generate_answers(Model(), Tok(), [[{"role": "user", "content": "hi"}]])
    assert seen["do_sample"] is False and "temperature" not in seen


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--top-p", "0.9"],
            "error: --top-p applies only when sampling; add --temperature (e.g. 0.7; 0 = greedy)",
        ),
        (
            ["--seed", "3"],
            "error: --seed applies only when sampling; add --temperature (e.g. 0.7; 0 = greedy)",
        ),
        (["--temperature", "-1"], "error: --temperature -1.0: use 0 (greedy) or more, e.g. 0.7"),
        (
            ["--temperature", "1", "--top-p", "0"],
            "error: --top-p 0.0: use a share of the probability mass in (0, 1], e.g. 0.9",
        ),
        (["--max-new-tokens", "0"], "error: --max-new-tokens 0: use 1 or more, e.g. 256"),
    ],
)
def test_a_refused_option_is_one_line_before_loading(tiny_llama_dir, capsys, argv, message):
    code, out, err = _chat(capsys, str(tiny_llama_dir), "--prompt", HI, *argv)
    assert (code, out, _errors(err)) == (2, "", [message])
    assert "loading" not in err


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory, tiny_llama_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuneforge.export.gguf import write_gguf

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    write_gguf(model, tok, tok.chat_template, ["<|im_end|>"], path, "f32", "tiny")
    return path


def test_a_gguf_base_is_converted_once(tiny_gguf, tmp_path, monkeypatch, capsys):
    """The second call (a new process: the in-memory digest is forgotten) neither converts again nor
    reads the GGUF to find its converted folder."""
    from tuneforge.models import gguf

    monkeypatch.setenv("TUNEFORGE_CACHE", str(tmp_path / "cache"))
    converted = []
    convert = gguf.convert
    monkeypatch.setattr(gguf, "convert", lambda path, out: converted.append(path) or convert(path, out))
    gguf._digest.cache_clear()
    code, first, err = _chat(capsys, str(tiny_gguf), "--prompt", HI, "--max-new-tokens", "4")
    assert code == 0, err
    assert converted == [tiny_gguf] and f"loading {tiny_gguf} …" in err.splitlines()
    assert "Converting and de-quantizing" not in err  # transformers' per-tensor bar: only with --verbose
    (folder,) = (tmp_path / "cache" / "models").iterdir()
    stamp = (folder / "model.safetensors").stat().st_mtime_ns

    def no_second_read(*args):
        raise AssertionError("the GGUF was hashed again")

    gguf._digest.cache_clear()
    monkeypatch.setattr(gguf, "convert", lambda path, out: pytest.fail("converted again"))
    monkeypatch.setattr(gguf.hashlib, "sha256", no_second_read)
    code, second, err = _chat(capsys, str(tiny_gguf), "--prompt", HI, "--max-new-tokens", "4")
    assert code == 0, err
    assert second == first and (folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_a_changed_gguf_is_hashed_again(tmp_path, monkeypatch):
    from tuneforge.models import gguf

    monkeypatch.setenv("TUNEFORGE_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "m.gguf"
    path.write_bytes(b"one")
    gguf._digest.cache_clear()
    one = gguf.file_digest(path)
    path.write_bytes(b"three")  # another size: a rewrite may keep the coarse mtime
    gguf._digest.cache_clear()
    assert gguf.file_digest(path) != one
    index = json.loads((tmp_path / "cache" / gguf.DIGESTS).read_text())
    assert index[str(path.resolve())]["sha256"] == gguf.file_digest(path)
