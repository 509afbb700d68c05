"""`ppo` on tiny models: two steps with LoRA, full fine-tuning and QLoRA (what trains, what stays frozen,
the reference unchanged), a CLI run and its run folder, an `rm` run as the reward model, and bad data or
bad reward functions stopping with one line that names the row or the function."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from tests.helpers.pref import write_pairs
from tests.helpers.runs import make_config, run_cli, write_alpaca, write_config
from tests.helpers.stages import assert_trained_and_frozen, build_trainer, snapshot

pytestmark = pytest.mark.filterwarnings("ignore")

PROBE = torch.tensor([[1, 4093, 198, 34, 27, 34, 2]])


def _ppo(tmp_path, model_dir, rewards, method=None, **stage):
    cfg = make_config(
        tmp_path,
        model_dir,
        write_alpaca(tmp_path / "data.json"),
        stage={"name": "ppo", "reward_funcs": rewards, "response_length": 4, "num_ppo_epochs": 1, **stage},
    )
    cfg["train"].update(max_steps=2, per_device_train_batch_size=2, save_steps=100)
    if method:
        cfg["method"] = method
    return cfg


def _losses(trainer) -> list[float]:
    return [e["loss"] for e in trainer.state.log_history if "loss" in e]


def _train_checked(trainer):
    """Two steps: finite losses, every trainable parameter (value head included) changed, frozen ones not."""
    before, head_before = snapshot(trainer.model), snapshot(trainer.value_head)
    assert any(n.startswith("value_head.") and trainable for n, (trainable, _) in before.items())
    result = trainer.train()
    losses = _losses(trainer)
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    assert_trained_and_frozen(before, trainer.model)
    assert_trained_and_frozen(head_before, trainer.value_head)
    assert not any(n.startswith("value_head.") for n, _ in trainer.model.named_parameters())  # detached
    return result


def test_lora_ppo_two_steps(tmp_path, tiny_llama_dir, rewards_file):
    cfg = _ppo(tmp_path, tiny_llama_dir, [f"{rewards_file}:alternate", "exact_match"], kl_coef=0.1)
    trainer = build_trainer(cfg, tmp_path / "run")
    assert trainer.ref_model is None  # the reference is the policy with its adapter disabled
    with torch.no_grad(), trainer.model.disable_adapter():
        base_logits = trainer.model(input_ids=PROBE).logits
    result = _train_checked(trainer)
    with torch.no_grad():
        with trainer.model.disable_adapter():
            assert torch.equal(trainer.model(input_ids=PROBE).logits, base_logits)  # reference unchanged
        assert not torch.equal(trainer.model(input_ids=PROBE).logits, base_logits)
    first = trainer.state.log_history[0]
    assert first["rewards/alternate/mean"] == 0.5 and first["reward_std"] > 0
    assert first["kl"] == 0.0  # a fresh adapter is a no-op: policy == reference on the first rollout
    for key in ("reward", "kl", "policy_loss", "value_loss", "clipfrac", "rewards/exact_match/mean"):
        assert key in result.metrics, key


def test_full_ppo_keeps_a_frozen_reference_copy(tmp_path, tiny_llama_dir, rewards_file):
    cfg = _ppo(tmp_path, tiny_llama_dir, [f"{rewards_file}:alternate"], method={"name": "full"})
    trainer = build_trainer(cfg, tmp_path / "run")
    ref_before = snapshot(trainer.ref_model)
    _train_checked(trainer)
    for name, p in trainer.ref_model.named_parameters():
        assert torch.equal(ref_before[name][1], p) and not p.requires_grad, name


def test_qlora_ppo_through_the_cli(tmp_path, tiny_llama_dir, rewards_file, capsys):
    """bitsandbytes 4-bit runs on the CPU here (as for the qlora dpo contract test)."""
    cfg = _ppo(tmp_path, tiny_llama_dir, [f"{rewards_file}:alternate"])
    cfg["method"] = {"name": "qlora", "bits": 4, "r": 4, "lora_alpha": 8, "lora_dropout": 0.0}
    code, out, err = run_cli(capsys, "train", str(write_config(tmp_path, cfg)))
    assert code == 0, err[-2000:]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["method"] == "qlora" and math.isfinite(manifest["metrics"]["last_train_loss"])
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()


def test_cli_run_folder(tmp_path, tiny_llama_dir, capsys):
    from peft import PeftModel
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    from tuneforge.artifacts import load_run

    cfg = _ppo(tmp_path, tiny_llama_dir, [{"function": "length", "target_length": 8}])
    cfg["train"].update(report_to=["tensorboard"], save_steps=1)
    cfg["data"]["eval_split"] = 2  # evaluation is a rollout too: eval_reward, eval_kl
    cfg["output"]["plot_loss"] = True
    code, out, err = run_cli(capsys, "train", str(write_config(tmp_path, cfg)))
    assert code == 0, err[-2000:]
    run = tmp_path / "run"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stage"] == "ppo" and manifest["artifact"] == "adapter"
    assert {"reward", "reward_std", "kl", "value_loss", "rewards/length/mean"} <= set(manifest["metrics"])
    assert {"eval_loss", "eval_reward", "eval_kl"} <= set(manifest["metrics"])
    assert manifest["metrics"]["num_input_tokens_seen"] > 0
    assert "'rewards/length/mean'" in out and "'value_loss'" in out  # the progress output
    assert "tokens, prompts only; completions are generated" in out  # the data line, not "0.0% trained"
    assert (run / "loss.png").is_file()
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "logs").rglob("*"))
    # the value head sits beside the adapter and in every checkpoint, never inside the adapter
    for folder in (run, run / "checkpoint-1", run / "checkpoint-2"):
        assert (folder / "value_head.safetensors").is_file(), folder
    with safe_open(str(run / "adapter" / "adapter_model.safetensors"), "pt") as f:
        assert not any("value_head" in k for k in f.keys())
    plain = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama_dir), run / "adapter")
    loaded = load_run(run)  # what chat / export / eval load
    with torch.no_grad():
        assert torch.allclose(plain(input_ids=PROBE).logits, loaded.model(input_ids=PROBE).logits)


def test_resume_restores_the_value_head(tmp_path, tiny_llama_dir, rewards_file):
    from safetensors.torch import load_file

    cfg = _ppo(tmp_path, tiny_llama_dir, [f"{rewards_file}:alternate"])
    cfg["train"]["save_steps"] = 1
    trainer = build_trainer(cfg, tmp_path / "run")
    trainer.train()
    saved = load_file(str(tmp_path / "run" / "checkpoint-1" / "value_head.safetensors"))
    cfg["train"]["resume_from_checkpoint"] = str(tmp_path / "run" / "checkpoint-1")
    resumed = build_trainer(cfg, tmp_path / "run")
    resumed._load_from_checkpoint(str(tmp_path / "run" / "checkpoint-1"))
    assert torch.equal(resumed.value_head.weight.detach(), saved["weight"])


def test_an_rm_run_folder_is_the_reward_model(tmp_path, tiny_llama_dir, capsys):
    rm = make_config(tmp_path, tiny_llama_dir, write_pairs(tmp_path / "p.json"), stage={"name": "rm"})
    rm["train"].update(max_steps=1, per_device_train_batch_size=2)
    rm["output"]["dir"] = str(tmp_path / "rm")
    code, _, err = run_cli(capsys, "train", str(write_config(tmp_path, rm, "rm.yaml")))
    assert code == 0, err[-2000:]
    trainer = build_trainer(
        _ppo(tmp_path, tiny_llama_dir, [{"model": str(tmp_path / "rm")}]), tmp_path / "run"
    )
    reward_model = trainer.reward_funcs[0]
    rm_before = snapshot(reward_model)
    trainer.train()
    assert all(
        torch.equal(rm_before[n][1], p) and not p.requires_grad for n, p in reward_model.named_parameters()
    )
    assert trainer.state.log_history[0]["rewards/rm/std"] > 0  # named after the run folder; a real score


@pytest.mark.parametrize(
    ("func", "message"),
    [
        ("broken", r"reward function 'broken' raised ZeroDivisionError: division by zero on sample \d+: .*answer 'Katze'"),
        ("short", r"reward function 'short' returned 1 rewards for 8 completions"),
    ],
)  # fmt: skip
def test_bad_reward_function_is_one_line(tmp_path, tiny_llama_dir, rewards_file, capsys, func, message):
    cfg = _ppo(tmp_path, tiny_llama_dir, [f"{rewards_file}:{func}"])
    cfg["train"]["per_device_train_batch_size"] = 8  # every row, "Katze" included, in the first rollout
    code, _, err = run_cli(capsys, "train", str(write_config(tmp_path, cfg)))
    assert code == 2
    assert re.search(r"error: " + message, err), err[-2000:]


def test_empty_prompts_name_the_row(tmp_path, tiny_llama_dir, capsys):
    rows = [
        {"instruction": "", "input": "", "output": "x"},
        {"instruction": "  ", "input": "", "output": "y"},
    ]
    cfg = _ppo(tmp_path, tiny_llama_dir, ["exact_match"])
    cfg["data"]["datasets"][0]["path"] = str(write_alpaca(tmp_path / "empty.json", rows))
    code, _, err = run_cli(capsys, "train", str(write_config(tmp_path, cfg)))
    assert code == 2
    assert re.search(r"error: .*first dropped: \S*empty\.json line 1: empty prompt", err), err[-2000:]


def test_rollout_larger_than_the_data_is_a_config_error(tmp_path, tiny_llama_dir, capsys):
    cfg = _ppo(tmp_path, tiny_llama_dir, ["exact_match"], num_mini_batches=4)
    cfg["train"]["per_device_train_batch_size"] = 4
    code, _, err = run_cli(capsys, "train", str(write_config(tmp_path, cfg)))
    assert code == 2 and "a rollout takes 16 prompts" in err and "has 8" in err, err[-2000:]
