"""`grpo` on tiny models: two steps with LoRA and with full fine-tuning, a reward model, the advantages
TRL computes from our rewards, and bad reward functions stopping with a clear error."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tests.helpers.runs import make_config, run_cli, write_alpaca, write_config
from tests.helpers.stages import assert_trained_and_frozen, build_trainer, snapshot


def _grpo(tmp_path, model_dir, rewards, method=None, **stage):
    cfg = make_config(
        tmp_path,
        model_dir,
        write_alpaca(tmp_path / "data.json"),
        stage={
            "name": "grpo",
            "reward_funcs": rewards,
            "num_generations": 2,
            "max_completion_length": 3,
            **stage,
        },
    )
    cfg["train"]["max_steps"] = 2
    if method:
        cfg["method"] = method
    return cfg


def test_lora_grpo_two_steps(tmp_path, tiny_llama_dir, rewards_file):
    cfg = _grpo(tmp_path, tiny_llama_dir, [f"{rewards_file}:alternate", "exact_match"])
    trainer = build_trainer(cfg, tmp_path / "run")
    before = snapshot(trainer.model)
    ref = {n: v for n, v in before.items() if ".ref." in n}
    assert ref and not any(trainable for trainable, _ in ref.values())  # TRL's frozen KL reference adapter
    result = trainer.train()
    assert math.isfinite(result.training_loss)
    assert_trained_and_frozen(before, trainer.model)
    assert "ref" not in trainer.model.peft_config  # the KL reference adapter is not saved with the run
    logged = trainer.state.log_history[0]
    assert logged["rewards/alternate/mean"] == 0.5 and "kl" in logged and "reward_std" in logged
    assert {"reward", "kl", "rewards/alternate/mean", "rewards/exact_match/mean"} <= set(result.metrics)


def test_full_grpo_keeps_the_reference_model(tmp_path, tiny_llama_dir, rewards_file):
    cfg = _grpo(tmp_path, tiny_llama_dir, [f"{rewards_file}:alternate"], method={"name": "full"})
    trainer = build_trainer(cfg, tmp_path / "run")
    before, ref_before = snapshot(trainer.model), snapshot(trainer.ref_model)
    assert math.isfinite(trainer.train().training_loss)
    assert_trained_and_frozen(before, trainer.model)
    for name, p in trainer.ref_model.named_parameters():
        assert torch.equal(ref_before[name][1], p), name


def test_advantages_for_hand_made_rewards(tmp_path, tiny_llama_dir, rewards_file):
    """Rewards 0, 1 in every group of 2: advantage = (r - mean) / (std + 1e-4), std the sample std."""
    cfg = _grpo(tmp_path, tiny_llama_dir, [f"{rewards_file}:alternate"], beta=0.0)
    trainer = build_trainer(cfg, tmp_path / "run")
    batch = [trainer.train_dataset[0]] * 2 + [trainer.train_dataset[1]] * 2
    out = trainer._generate_and_score_completions(batch)
    std = math.sqrt(0.5)  # sample std of {0, 1}
    expected = torch.tensor([-0.5, 0.5, -0.5, 0.5]) / (std + 1e-4)
    assert torch.allclose(out["advantages"], expected, atol=1e-5)
    # the prompt ids generation started from are the renderer's
    assert (
        out["prompt_ids"][0][out["prompt_mask"][0].bool()].tolist() == trainer.train_dataset[0]["prompt_ids"]
    )


def test_reward_model_is_used_and_stays_frozen(tmp_path, tiny_llama_dir, tokenizer):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    rm_cfg = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, num_labels=1, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    rm_dir = tmp_path / "rm"
    LlamaForSequenceClassification(rm_cfg).save_pretrained(rm_dir)
    tokenizer.save_pretrained(rm_dir)
    trainer = build_trainer(_grpo(tmp_path, tiny_llama_dir, [{"model": str(rm_dir)}]), tmp_path / "run")
    rm = trainer.reward_funcs[0]
    rm_before = snapshot(rm)
    before = snapshot(trainer.model)
    trainer.train()
    assert_trained_and_frozen(before, trainer.model)
    assert all(torch.equal(rm_before[n][1], p) and not p.requires_grad for n, p in rm.named_parameters())
    assert trainer.state.log_history[0]["rewards/rm/std"] > 0  # a real, varying score


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (
            "broken",
            r"reward function 'broken' raised ZeroDivisionError: division by zero on sample \d+: .*answer 'Katze'",
        ),
        ("short", r"reward function 'short' returned 1 rewards for 4 completions"),
    ],
)
def test_bad_reward_function_stops_with_a_clear_error(
    tmp_path, tiny_llama_dir, rewards_file, capsys, func, message
):
    cfg = _grpo(tmp_path, tiny_llama_dir, [f"{rewards_file}:{func}"])
    cfg["data"]["max_samples"] = 8
    cfg["train"]["per_device_train_batch_size"] = 8 if func == "broken" else 4
    cfg["stage"]["num_generations"] = 2
    code, _, err = run_cli(capsys, "train", str(write_config(tmp_path, cfg)))
    assert code == 2
    assert __import__("re").search(message, err), err


def test_cli_run_writes_reward_metrics_to_the_manifest(tmp_path, tiny_llama_dir, capsys):
    cfg = _grpo(tmp_path, tiny_llama_dir, [{"function": "length", "target_length": 8}], beta=0.0)
    cfg["output"]["plot_loss"] = True
    cfg["train"]["report_to"] = ["tensorboard"]
    code, out, err = run_cli(capsys, "train", str(write_config(tmp_path, cfg)))
    assert code == 0, err
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stage"] == "grpo" and "rewards/length/mean" in manifest["metrics"]
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()
    assert "'rewards/length/mean'" in out  # the progress output
    assert (tmp_path / "run" / "loss.png").is_file()  # loss with the mean reward on a second axis
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "run" / "logs").rglob("*"))


def test_data_inspect_shows_prompts(tmp_path, tiny_llama_dir, capsys):
    cfg = _grpo(tmp_path, tiny_llama_dir, ["exact_match"])
    code, out, err = run_cli(capsys, "data", "inspect", str(write_config(tmp_path, cfg)))
    assert code == 0, err
    assert "--- prompt 0 (" in out and "reference answer" in out and "<|im_start|>assistant" in out
    assert "trained tokens: none (prompts only" in out


def test_qlora_grpo_two_steps(tmp_path, tiny_llama_dir, rewards_file):
    """4-bit base (bitsandbytes on the CPU): the adapter trains, the quantized base does not."""
    qlora = {"name": "qlora", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0}
    cfg = _grpo(tmp_path, tiny_llama_dir, [f"{rewards_file}:alternate"], method=qlora)
    trainer = build_trainer(cfg, tmp_path / "run")
    assert any("Params4bit" in type(p).__name__ for p in trainer.model.parameters())
    before = snapshot(trainer.model)
    assert math.isfinite(trainer.train().training_loss)
    assert_trained_and_frozen(before, trainer.model)


def test_grpo_raises_a_learnable_reward(tmp_path, tiny_llama_dir, monkeypatch):
    """The direction of the whole loop (our prompts, rewards and trainer glue around TRL): reward the
    completions that start with one token, and that token's probability after the prompt goes up.

    The tiny model's final norm is scaled so its next-token distribution is peaked (a random model is
    near uniform over 49k tokens, where nothing is learnable in a few steps) until its most likely first
    token has a probability well below 1; that token is rewarded, so the group of 8 disagrees."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    with torch.no_grad():
        model.model.norm.weight.mul_(10.0)
    peaked = tmp_path / "peaked"
    model.save_pretrained(peaked)
    AutoTokenizer.from_pretrained(tiny_llama_dir).save_pretrained(peaked)
    # the rewarded token is only known once the prompt is rendered, so the function reads it when called
    (tmp_path / "rewards.py").write_text(
        "from pathlib import Path\n\n"
        "def first_token(completion_ids, **kwargs):\n"
        "    target = int((Path(__file__).parent / 'target.txt').read_text())\n"
        "    return [float(ids[0] == target) for ids in completion_ids]\n"
    )
    monkeypatch.chdir(tmp_path)

    cfg = _grpo(tmp_path, peaked, ["rewards.py:first_token"], method={"name": "full"}, beta=0.0)
    cfg["stage"].update(num_generations=8, max_completion_length=2)
    cfg["data"]["max_samples"] = 1
    cfg["train"].update(per_device_train_batch_size=8, max_steps=8, learning_rate=3e-3, save_steps=100)
    trainer = build_trainer(cfg, tmp_path / "run")
    prompt = torch.tensor([trainer.train_dataset[0]["prompt_ids"]])

    def first_token_probs():
        with torch.no_grad():
            return trainer.model(input_ids=prompt).logits[0, -1].softmax(-1)

    before = first_token_probs()
    target = int(before.argmax())
    assert 0.05 < float(before[target]) < 0.7, float(before[target])  # the group will disagree
    (tmp_path / "target.txt").write_text(str(target))
    trainer.train()
    after = first_token_probs()
    assert float(after[target]) > float(before[target]) + 0.2, (float(before[target]), float(after[target]))
    rewards = [e["reward"] for e in trainer.state.log_history if "reward" in e]
    assert sum(rewards[-3:]) / 3 > sum(rewards[:3]) / 3, rewards
