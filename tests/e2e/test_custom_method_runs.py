"""Runs of the methods PEFT lacks, end to end through the CLI on the tiny Llama: a `mam` run
(prefix + parallel adapter) saves only its own adapter, which a fresh process loads back with the
same logits and `chat` answers from, while `export --merge` refuses it in one line; a `relora`
run saves the whole merged model, which plain transformers loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers.runs import make_config, run_cli, write_alpaca, write_config

ROOT = Path(__file__).parents[2]
PROBE = [[1, 42, 7, 99, 3, 17]]


@pytest.fixture(scope="module")
def mam_run(tmp_path_factory, tiny_llama_dir):
    from tuneforge.config.load import load_config
    from tuneforge.train import run_training

    tmp = tmp_path_factory.mktemp("mam")
    method = {"name": "mam", "bottleneck_size": 8, "num_virtual_tokens": 4}
    cfg = make_config(tmp, tiny_llama_dir, write_alpaca(tmp / "train.json"), method=method)
    cfg["method"] = method
    cfg["train"].update(max_steps=2, learning_rate=1e-2)
    return run_training(load_config(write_config(tmp, cfg)))


def test_own_adapter_artifact_holds_only_the_trained_tensors(mam_run):
    manifest = json.loads((mam_run / "manifest.json").read_text())
    assert manifest["artifact"] == "method_adapter"
    files = sorted(p.name for p in (mam_run / "adapter").iterdir())
    assert files == ["tuneforge_adapter.json", "tuneforge_adapter.safetensors"]
    assert json.loads((mam_run / "adapter" / "tuneforge_adapter.json").read_text())["name"] == "mam"
    assert not (mam_run / "model").exists()


def test_own_adapter_reloads_in_a_fresh_process_with_identical_logits(mam_run, tmp_path):
    from tuneforge.artifacts import load_run

    code = (
        "import sys, torch; from tuneforge.artifacts import load_run; "
        f"m = load_run(sys.argv[1]).model; torch.save(m(input_ids=torch.tensor({PROBE})).logits, sys.argv[2])"
    )
    subprocess.run([sys.executable, "-c", code, str(mam_run), str(tmp_path / "l.pt")], check=True, cwd=ROOT)
    run = load_run(mam_run)
    with torch.no_grad():
        here = run.model(input_ids=torch.tensor(PROBE)).logits
        base = load_run(mam_run, base_only=True).model(input_ids=torch.tensor(PROBE)).logits
    assert torch.equal(torch.load(tmp_path / "l.pt"), here)
    assert not torch.equal(here, base)  # the trained adapter is in use


def test_chat_answers_from_the_own_adapter(mam_run, capsys):
    """The one-shot answer is the run's greedy answer: argmax token by token through the loaded adapter
    (prefix + parallel adapter, no KV cache), up to a stop token, decoded without special tokens."""
    from tuneforge.artifacts import load_run

    code, out, err = run_cli(capsys, "chat", str(mam_run), "--prompt", "Hi", "--max-new-tokens", "4")
    assert code == 0, err
    run = load_run(mam_run)
    tok = run.tokenizer
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "Hi"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )["input_ids"]
    stops = {tok.convert_tokens_to_ids(t) for t in run.stop_tokens} | {tok.eos_token_id}
    answer: list[int] = []
    with torch.no_grad():
        for _ in range(4):
            nxt = int(
                run.model(input_ids=torch.cat([ids, torch.tensor([answer], dtype=ids.dtype)], 1))
                .logits[0, -1]
                .argmax()
            )
            if nxt in stops:
                break
            answer.append(nxt)
    assert out.strip() == tok.decode(answer, skip_special_tokens=True).strip(), (out, answer)


def test_export_merge_refuses_an_unmergeable_adapter(mam_run, capsys, tmp_path):
    code, out, err = run_cli(capsys, "export", str(mam_run), "--merge", str(tmp_path / "merged"))
    assert code == 2
    assert "method 'mam' adds modules of its own that cannot be folded into the base weights" in err
    assert "Traceback" not in err and not (tmp_path / "merged").exists()


def test_relora_run_saves_the_merged_model(tmp_path, tiny_llama_dir, capsys):
    from transformers import AutoModelForCausalLM

    from tuneforge.artifacts import load_run

    method = {"name": "relora", "r": 2, "lora_alpha": 4, "merge_every": 1, "restart_warmup_steps": 1}
    cfg = make_config(tmp_path, tiny_llama_dir, write_alpaca(tmp_path / "train.json"), method=method)
    cfg["train"].update(max_steps=3, save_steps=10)
    code, out, err = run_cli(capsys, "train", str(write_config(tmp_path, cfg)))
    assert code == 0, err[-2000:]
    run_dir = tmp_path / "run"
    assert json.loads((run_dir / "manifest.json").read_text())["artifact"] == "model"
    plain = AutoModelForCausalLM.from_pretrained(run_dir / "model").eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    assert not any("lora" in n for n, _ in plain.named_parameters())
    with torch.no_grad():
        ours = load_run(run_dir).model(input_ids=torch.tensor(PROBE)).logits
        assert torch.equal(plain(input_ids=torch.tensor(PROBE)).logits, ours)
        assert not torch.equal(base(input_ids=torch.tensor(PROBE)).logits, ours)


def test_bitfit_example_trains_on_qwen2_and_merges(tmp_path, tiny_qwen2_dir, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, err = run_cli(
        capsys,
        "train",
        "examples/bitfit/sft_bitfit.yaml",
        f"model.name_or_path={tiny_qwen2_dir}",
        "train.max_steps=1",
        "data.max_length=64",
        f"output.dir={tmp_path / 'run'}",
        "train.report_to=[none]",
        "output.plot_loss=false",
    )
    assert code == 0, err[-2000:]
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["artifact"] == "adapter"
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").stat().st_size < 10_000
    # merging adds the trained deltas into the biases; export checks the logits against the run
    code, out, err = run_cli(
        capsys, "export", str(tmp_path / "run"), "--merge", str(tmp_path / "merged"), "--no-check-stop"
    )
    assert code == 0, err[-2000:]
    assert "max logit difference" in out


def test_bitfit_on_a_model_without_biases_is_one_line(tmp_path, tiny_llama_dir, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, err = run_cli(
        capsys,
        "train",
        "examples/bitfit/sft_bitfit.yaml",
        f"model.name_or_path={tiny_llama_dir}",
        f"output.dir={tmp_path / 'run'}",
        "data.max_length=64",
    )
    assert code == 2
    assert "has no biases in its linear layers" in err and "use method.name=lora" in err
    assert "Traceback" not in err
