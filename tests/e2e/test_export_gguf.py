"""`tuneforge export --gguf / --ollama / --merge` on tiny LoRA runs: the GGUF file reads back with
plain transformers (`gguf_file=`) with the run's tokenizer, chat template and stop token, and
generates what the run generates; the Ollama Modelfile's Go template renders conversations exactly
as the run's jinja template does; the merged folder carries a model card."""

from __future__ import annotations

import json
import re

import pytest
import torch

from tests.helpers.gotemplate import render_go
from tests.helpers.runs import make_config, run_cli, write_alpaca


def _train(tmp, model_dir):
    from tuneforge.config.load import validate
    from tuneforge.train import run_training

    cfg = make_config(tmp, model_dir, write_alpaca(tmp / "d.json"))
    cfg["train"].update(learning_rate=1e-2, max_steps=2)
    return run_training(validate(cfg))


@pytest.fixture(scope="module")
def llama_run(tmp_path_factory, tiny_llama_dir):
    return _train(tmp_path_factory.mktemp("gguf-llama"), tiny_llama_dir)


def _load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    return model.eval(), AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


def _greedy(model, ids, eos, n=12):
    x = torch.tensor([ids])
    out = model.generate(input_ids=x, max_new_tokens=n, do_sample=False, eos_token_id=eos, pad_token_id=eos)
    return out[0, x.shape[1] :].tolist()


def test_f32_gguf_and_ollama_modelfile(llama_run, tmp_path, capsys):
    from tuneforge.artifacts import load_run
    from tuneforge.export.merged import merged_model
    from tuneforge.inference.generate import prompt_ids

    out = tmp_path / "ollama"
    code, stdout, err = run_cli(
        capsys, "export", str(llama_run), "--ollama", str(out), "--quant", "f32", "--no-check-stop"
    )
    assert code == 0, err
    assert "same greedy answers as the run on 3/3" in stdout and "Modelfile written" in stdout
    gguf_path = out / "model-f32.gguf"
    model, tok = _load(gguf_path)
    run = load_run(llama_run)
    assert tok.chat_template == run.chat_template
    assert tok.eos_token == "<|im_end|>" == run.stop_tokens[0]
    messages = [{"role": "user", "content": "Add 12 + 30, then say hello in French."}]
    ids = prompt_ids(tok, messages, run.chat_template)
    assert ids == prompt_ids(run.tokenizer, messages, run.chat_template)
    reference = merged_model(run)
    x = torch.tensor([ids])
    with torch.no_grad():
        assert (model(input_ids=x).logits - reference(input_ids=x).logits).abs().max() < 1e-4
    assert _greedy(model, ids, tok.eos_token_id) == _greedy(reference, ids, tok.eos_token_id)

    modelfile = (out / "Modelfile").read_text()
    assert "FROM ./model-f32.gguf" in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile
    system = re.search(r'SYSTEM """(.*?)"""', modelfile, re.S).group(1)
    template = re.search(r'TEMPLATE """(.*?)"""', modelfile, re.S).group(1)
    conversation = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!\nHow can I help?"},
        {"role": "user", "content": "Who are you?"},
    ]
    for conv in (conversation, [{"role": "system", "content": "Be brief."}, *conversation]):
        expected = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
        assert render_go(template, conv, system) == expected


def test_q8_0_gguf_that_never_stops_fails_loudly_and_is_kept(llama_run, tmp_path, capsys):
    """The tiny random model never says <|im_end|>: the stop check must fail the export in one line,
    keeping the file, which holds Q8_0 tensors close to the run's weights."""
    import gguf

    from tuneforge.artifacts import load_run
    from tuneforge.export.merged import merged_model

    path = tmp_path / "m.gguf"
    code, _, err = run_cli(capsys, "export", str(llama_run), "--gguf", str(path), "--quant", "q8_0")
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "stopped at its end-of-turn token (<|im_end|>) for 0 of 3" in errors[0]
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(path).tensors}
    assert types["blk.0.attn_q.weight"] == "Q8_0" and types["blk.0.attn_norm.weight"] == "F32"
    assert "output.weight" not in types  # tied to token_embd, as in the model
    model, _ = _load(path)
    x = torch.tensor([[1, 500, 900, 2, 7, 42]])
    with torch.no_grad():
        diff = (model(input_ids=x).logits - merged_model(load_run(llama_run))(input_ids=x).logits).abs().max()
    assert 0 < diff < 5e-2  # quantized: close, not equal


def test_qwen2_gguf_reads_back(tmp_path, tiny_qwen2_dir, capsys):
    run_dir = _train(tmp_path, tiny_qwen2_dir)
    path = tmp_path / "q.gguf"
    code, stdout, err = run_cli(capsys, "export", str(run_dir), "--gguf", str(path), "--no-check-stop")
    assert code == 0, err
    assert "same greedy answers as the run on 3/3" in stdout
    model, _ = _load(path)
    assert model.config.model_type == "qwen2" and model.model.layers[0].self_attn.q_proj.bias is not None


def test_bad_export_arguments(llama_run, tmp_path, capsys):
    code, _, err = run_cli(capsys, "export", str(llama_run))
    assert code == 2 and "--merge OUT_DIR, --gguf OUT.gguf or --ollama DIR" in err
    code, _, err = run_cli(capsys, "export", str(llama_run), "--gguf", str(tmp_path / "x.bin"))
    assert code == 2 and "ending in .gguf" in err
    code, _, err = run_cli(
        capsys, "export", str(llama_run), "--gguf", str(tmp_path / "x.gguf"), "--quant", "q4_k"
    )
    assert code == 2 and "invalid choice" in err


def test_merged_export_has_a_model_card(llama_run, tmp_path, capsys, tiny_llama_dir):
    code, _, err = run_cli(
        capsys, "export", str(llama_run), "--merge", str(tmp_path / "m"), "--no-check-stop"
    )
    assert code == 0, err
    card = (tmp_path / "m" / "README.md").read_text()
    manifest = json.loads((llama_run / "manifest.json").read_text())
    assert str(tiny_llama_dir) in card and "| method | lora (r=4, lora_alpha=8" in card
    assert f"| train_loss | {manifest['metrics']['train_loss']:.4g} |" in card
    assert manifest["data"]["fingerprint"] in card and "`<|im_end|>`" in card
