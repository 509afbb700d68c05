"""End to end through the CLI on a tiny random Llama: train, inspect, chat, export, and the
artifacts that plain peft / transformers load with matching logits."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tests.helpers.learning import logged_losses
from tests.helpers.runs import make_config, run_cli, write_alpaca, write_config


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_llama_dir):
    import _pytest.capture  # noqa: F401  (capsys is function-scoped; run main directly here)

    from tuneforge.config.load import load_config
    from tuneforge.train import run_training

    tmp = tmp_path_factory.mktemp("e2e")
    data = write_alpaca(tmp / "train.json")
    cfg = make_config(tmp, tiny_llama_dir, data)
    path = write_config(tmp, cfg)
    run_dir = run_training(load_config(path))
    return tmp, path, run_dir


def test_train_writes_the_run_folder(lora_run):
    _, _, run_dir = lora_run
    for name in [
        "config.yaml",
        "manifest.json",
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
        "tokenizer/tokenizer.json",
        "chat_template.jinja",
    ]:
        assert (run_dir / name).is_file(), name
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["method"] == "lora" and manifest["stage"] == "sft"
    assert manifest["metrics"]["global_step"] == 4
    assert manifest["data"]["samples"] == 8 and 0 < manifest["data"]["trained_share"] < 1
    assert manifest["versions"]["transformers"]
    assert manifest["stop_tokens"] == ["<|im_end|>"]
    # save_steps 2 of 4 steps, save_total_limit 2: both checkpoints kept, the last one holds every loss
    assert sorted(p.name for p in run_dir.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    losses = logged_losses(run_dir, 4)
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)
    assert manifest["metrics"]["last_train_loss"] == losses[-1]


def test_adapter_loads_in_plain_peft_with_same_logits(lora_run, tiny_llama_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tuneforge.artifacts import load_run

    _, _, run_dir = lora_run
    ours = load_run(run_dir).model
    plain = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_llama_dir), run_dir / "adapter"
    )
    plain.eval()
    x = torch.tensor([[1, 500, 900, 2, 7, 42]])
    with torch.no_grad():
        a, b = ours(input_ids=x).logits, plain(input_ids=x).logits
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)(input_ids=x).logits
    assert torch.equal(a, b)
    assert not torch.allclose(a, base), "training changed nothing"


def test_export_merge_loads_in_plain_transformers(lora_run, capsys):
    from transformers import AutoModelForCausalLM

    from tuneforge.artifacts import load_run

    tmp, _, run_dir = lora_run
    code, out, err = run_cli(
        capsys, "export", str(run_dir), "--merge", str(tmp / "merged"), "--no-check-stop"
    )
    assert code == 0, err
    assert "reloaded with plain transformers" in out
    merged = AutoModelForCausalLM.from_pretrained(tmp / "merged")
    assert "quantization_config" not in merged.config.to_dict()
    x = torch.tensor([[1, 500, 900, 2, 7, 42]])
    with torch.no_grad():
        diff = (merged(input_ids=x).logits - load_run(run_dir).model(input_ids=x).logits).abs().max()
    assert diff < 1e-4
    gen = json.loads((tmp / "merged" / "generation_config.json").read_text())
    assert 2 in (gen["eos_token_id"] if isinstance(gen["eos_token_id"], list) else [gen["eos_token_id"]])


def test_chat_one_shot_uses_the_runs_template(lora_run, capsys, tiny_llama_dir):
    """The one-shot answer equals greedy generation by plain peft + transformers with the run's
    saved tokenizer and chat template."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, _, run_dir = lora_run
    code, out, err = run_cli(
        capsys, "chat", str(run_dir), "--prompt", "What is your name?", "--max-new-tokens", "6"
    )
    assert code == 0, err
    tok = AutoTokenizer.from_pretrained(run_dir / "tokenizer")
    assert tok.chat_template == (run_dir / "chat_template.jinja").read_text()
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_llama_dir), run_dir / "adapter"
    )
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "What is your name?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )["input_ids"]
    gen = model.generate(
        input_ids=ids,
        max_new_tokens=6,
        do_sample=False,
        eos_token_id=[tok.eos_token_id],
        pad_token_id=tok.pad_token_id,
    )
    expected = tok.decode(gen[0, ids.shape[1] :], skip_special_tokens=True).strip()
    assert out.strip() == expected


def test_chat_interactive_streams(lora_run, capsys, monkeypatch):
    _, _, run_dir = lora_run
    inputs = iter(["hello", "/reset", "again", "/exit"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(inputs))
    code, out, err = run_cli(capsys, "chat", str(run_dir), "--max-new-tokens", "3")
    assert code == 0, err
    assert out.count("model> ") == 2


def test_refuses_to_overwrite_a_finished_run(lora_run, capsys):
    _, path, _ = lora_run
    code, _, err = run_cli(capsys, "train", str(path))
    assert code == 2
    assert "already holds a finished run" in err and "output.overwrite=true" in err


def test_data_inspect_marks_trained_tokens(lora_run, capsys):
    _, path, _ = lora_run
    code, out, err = run_cli(capsys, "data", "inspect", str(path), "-n", "2", "--color", "never")
    assert code == 0, err
    assert "[[" in out and "<|im_end|>]]" in out
    sample = out.split("--- sample 0")[1]
    assert "<|im_start|>user" in sample.split("[[")[0]  # the prompt is shown unmarked
    assert "samples kept: 8" in out and "trained tokens:" in out and "length histogram" in out


def test_data_inspect_colour(lora_run, capsys):
    """--color always marks exactly the spans --color never brackets: trained in green, the rest dim."""
    import re

    _, path, _ = lora_run

    def sample(color: str) -> str:
        code, out, err = run_cli(capsys, "data", "inspect", str(path), "-n", "1", "--color", color)
        assert code == 0, err
        return out.split("--- sample 0")[1].split("\n", 1)[1].split("--- statistics ---")[0]

    plain, coloured = sample("never"), sample("always")
    trained = re.findall(r"\[\[(.*?)\]\]", plain, re.S)
    assert trained and "[[" not in coloured
    assert re.findall(r"\033\[32m(.*?)\033\[0m", coloured, re.S) == trained
    assert re.sub(r"\033\[(32|2|0)m", "", coloured) == plain.replace("[[", "").replace("]]", "")
    assert re.findall(r"\033\[2m(.*?)\033\[0m", coloured, re.S)  # the masked prompt, dim


def test_full_method_and_pt_stage(tmp_path, tiny_qwen2_dir, capsys):
    """`pt` trains every token of plain text (full fine-tuning here): the loss is finite and falls, the
    manifest and `data inspect` count every token as trained, and the saved run loads back with the
    trained weights."""
    from transformers import AutoModelForCausalLM

    from tuneforge.artifacts import load_run

    text = tmp_path / "corpus.txt"
    text.write_text(
        "\n\n".join(f"Paragraph {i}: the forge heats the metal until it glows." for i in range(12))
    )
    cfg = make_config(tmp_path, tiny_qwen2_dir, text, method={"name": "full"}, stage={"name": "pt"})
    cfg["data"]["datasets"] = [{"path": str(text), "format": "text"}]
    del cfg["method"]["r"], cfg["method"]["lora_alpha"]
    path = write_config(tmp_path, cfg)
    code, out, err = run_cli(capsys, "train", str(path))
    assert code == 0, err
    assert "tuneforge chat" in out.strip().splitlines()[-1]
    run_dir = tmp_path / "run"
    model = AutoModelForCausalLM.from_pretrained(run_dir / "model")
    assert model.config.model_type == "qwen2"

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert (manifest["stage"], manifest["method"], manifest["artifact"]) == ("pt", "full", "model")
    assert manifest["metrics"]["global_step"] == 4
    assert manifest["data"]["samples"] == 12 and manifest["data"]["trained_share"] == 1.0
    assert manifest["parameters"]["trainable"] == manifest["parameters"]["total"]
    tokens = manifest["data"]["tokens"]
    assert f"{tokens} tokens, 100.0% trained" in out
    code, inspected, err = run_cli(capsys, "data", "inspect", str(path), "-n", "1", "--color", "never")
    assert code == 0, err
    assert f"trained tokens: {tokens} (100.0%)" in inspected

    losses = logged_losses(run_dir, 4)
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses), losses
    assert losses[-1] < losses[0] - 0.1, f"the loss did not fall: {losses}"

    x = torch.tensor([[1, 500, 900, 2, 7, 42]])
    loaded = load_run(run_dir)
    assert loaded.manifest["stage"] == "pt"
    with torch.no_grad():
        got, saved = loaded.model(input_ids=x).logits, model(input_ids=x).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_qwen2_dir)(input_ids=x).logits
    assert torch.equal(got, saved)
    assert not torch.allclose(got, base), "the saved model is the base model"


def test_train_help_lists_config_keys(capsys):
    from tuneforge.config.reference import reference_text

    code, out, _ = run_cli(capsys, "train", "--help-config")
    assert code == 0 and "| `train.learning_rate` | float |" in out
    assert out.strip() == reference_text().strip()  # the whole generated reference, every key


def test_ls_methods(capsys):
    from tuneforge.methods import METHODS

    code, out, _ = run_cli(capsys, "ls", "methods")
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines() if line.strip() and not line.startswith(" ")]
    assert {"full", "freeze", "lora", "qlora"} <= set(listed)
    assert sorted(listed) == sorted(METHODS.names()), out  # each registered method once, nothing else


def test_qlora_run_exports_into_a_dequantized_base(tmp_path, tiny_llama_dir, capsys):
    from transformers import AutoModelForCausalLM

    from tuneforge.artifacts import load_run

    cfg = make_config(tmp_path, tiny_llama_dir, write_alpaca(tmp_path / "d.json"))
    cfg["method"] = {"name": "qlora", "bits": 4, "r": 4, "lora_alpha": 8}
    code, _, err = run_cli(capsys, "train", str(write_config(tmp_path, cfg)))
    assert code == 0, err
    code, out, err = run_cli(
        capsys, "export", str(tmp_path / "run"), "--merge", str(tmp_path / "m"), "--no-check-stop"
    )
    assert code == 0, err
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    assert "quantization_config" not in merged.config.to_dict()
    x = torch.tensor([[1, 500, 900, 2, 7, 42]])
    run_model = load_run(tmp_path / "run").model  # on the GPU where there is one (bitsandbytes)
    with torch.no_grad():
        diff = (
            (merged(input_ids=x).logits - run_model(input_ids=x.to(run_model.device)).logits.cpu())
            .abs()
            .max()
        )
    assert diff < 1e-3


@pytest.mark.parametrize(
    "dataset, fmt, template",
    [
        ("alpaca_demo.json", "alpaca", "auto"),
        ("sharegpt_demo.json", "sharegpt", "qwen"),
        ("openai_demo.jsonl", "openai", "qwen"),
    ],
)
def test_data_inspect_on_the_demo_files(tmp_path, tiny_llama_dir, capsys, dataset, fmt, template):
    from pathlib import Path

    data = Path(__file__).parents[2] / "examples" / "data" / dataset
    cfg = make_config(tmp_path, tiny_llama_dir, data)
    cfg["data"].update(datasets=[{"path": str(data), "format": fmt}], template=template, max_length=512)
    code, out, err = run_cli(
        capsys, "data", "inspect", str(write_config(tmp_path, cfg)), "-n", "5", "--color", "never"
    )
    assert code == 0, err
    assert out.count("<|im_end|>]]") >= out.count("--- sample") - 1  # every shown sample trains its answers
    assert "dropped: 0" in out
    if fmt != "alpaca":
        assert "[[<tool_call>" in out  # the tool call itself is trained
        assert "<tool_response>" in out.split("[[<tool_call>")[1].split("]]")[1]  # the tool result is not
