"""PEFT methods through a whole run on the tiny Llama: prompt learning trains with the virtual
tokens in place (finite, falling loss), answers in chat, and is refused by export --merge with the
reason; a PiSSA run exports through the converted adapter; AdaLoRA's budget callback runs."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tests.helpers.runs import make_config, run_cli, write_alpaca, write_config


def train(tmp_path, model_dir, capsys, method: dict, **train) -> tuple:
    data = write_alpaca(tmp_path / "train.json")
    cfg = make_config(tmp_path, model_dir, data, method=method, train={"save_steps": 100, **train})
    cfg["method"] = method  # replace the default lora keys, not merge into them
    code, out, err = run_cli(capsys, "train", str(write_config(tmp_path, cfg)))
    assert code == 0, err[-2000:]
    return tmp_path / "run", out


def losses(run_dir) -> list[float]:
    state = json.loads(sorted(run_dir.glob("checkpoint-*/trainer_state.json"))[-1].read_text())
    return [e["loss"] for e in state["log_history"] if "loss" in e]


def plain_peft_answer(run_dir, base_dir, prompt: str, max_new_tokens: int) -> str:
    """Greedy answer of base + adapter loaded with plain peft, prompted with the run's template."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(run_dir / "tokenizer")
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), run_dir / "adapter")
    model.eval()
    ids = tok.apply_chat_template(
        [{"role": "user", "content": prompt}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )["input_ids"]
    out = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=[tok.eos_token_id],
        pad_token_id=tok.pad_token_id,
    )
    return tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()


@pytest.mark.parametrize(
    "method",
    [
        {"name": "prompt_tuning", "num_virtual_tokens": 4},
        {"name": "prefix_tuning", "num_virtual_tokens": 4},
    ],
    ids=lambda m: m["name"],
)
def test_prompt_learning_run_trains_chats_and_refuses_merge(method, tmp_path, tiny_llama_dir, capsys):
    run_dir, _ = train(tmp_path, tiny_llama_dir, capsys, method, max_steps=6, learning_rate=0.3, save_steps=6)
    seen = losses(run_dir)
    assert all(math.isfinite(x) for x in seen) and seen[-1] < seen[0], seen
    assert json.loads((run_dir / "adapter" / "adapter_config.json").read_text())["num_virtual_tokens"] == 4

    code, out, err = run_cli(
        capsys, "chat", str(run_dir), "--prompt", "What is your name?", "--max-new-tokens", "4"
    )
    assert code == 0, err
    assert out.strip() == plain_peft_answer(run_dir, tiny_llama_dir, "What is your name?", 4)

    capsys.readouterr()  # drop what the plain peft load above printed
    code, out, err = run_cli(capsys, "export", str(run_dir), "--merge", str(tmp_path / "merged"))
    assert code == 2
    assert "cannot be merged: it learns extra virtual tokens" in err and "tuneforge chat" in err
    assert err.count("error:") == 1 and "Loading weights" not in err  # refused before loading the model
    assert not (tmp_path / "merged").exists()


def test_pissa_run_saves_plain_lora_and_exports(tmp_path, tiny_llama_dir, capsys):
    method = {"name": "pissa", "r": 4, "lora_alpha": 4, "lora_dropout": 0.0}
    run_dir, _ = train(tmp_path, tiny_llama_dir, capsys, method, max_steps=2)
    saved = json.loads((run_dir / "adapter" / "adapter_config.json").read_text())
    assert saved["r"] == 8 and saved["init_lora_weights"] is True  # converted: applies to the original base
    # export checks that the merged model's logits match base + adapter as loaded from the run
    code, out, err = run_cli(
        capsys, "export", str(run_dir), "--merge", str(tmp_path / "merged"), "--no-check-stop"
    )
    assert code == 0, err
    assert "reloaded with plain transformers" in out


def test_adalora_run_reallocates_the_rank_budget(tmp_path, tiny_llama_dir, capsys):
    method = {"name": "adalora", "init_r": 4, "target_r": 2, "lora_dropout": 0.0}
    run_dir, _ = train(tmp_path, tiny_llama_dir, capsys, method, max_steps=3)
    saved = json.loads((run_dir / "adapter" / "adapter_config.json").read_text())
    assert saved["total_step"] == 3  # set from the run, not from the config
    kept = [sum(mask) for mask in saved["rank_pattern"].values()]
    assert sum(kept) == 2 * len(kept)
