"""Expected numbers of `ppo` on the tiny Llama: facts that hold for any model on the first update, and the
losses of a fixed-seed run recorded when the stage was written (a change means the numerics changed:
if on purpose, update the numbers in the same commit and say why)."""

from __future__ import annotations

import pytest
import torch

from tests.helpers.runs import make_config, write_alpaca
from tests.helpers.stages import build_trainer

pytestmark = pytest.mark.filterwarnings("ignore")

CONSTANT_PY = "def one(completions, **kwargs):\n    return [1.0] * len(completions)\n"


def _cfg(tmp_path, model_dir, **stage):
    (tmp_path / "const.py").write_text(CONSTANT_PY)
    cfg = make_config(
        tmp_path,
        model_dir,
        write_alpaca(tmp_path / "d.json"),
        stage={
            "name": "ppo",
            "reward_funcs": [f"{tmp_path / 'const.py'}:one"],
            "response_length": 4,
            **stage,
        },
    )
    cfg["train"].update(per_device_train_batch_size=2, save_steps=100)
    # the recorded losses were drawn with PEFT's dropout masks; the fused dropout draws its own
    cfg["speed"] = {"fused_lora_dropout": False}
    return cfg


def test_first_update_from_facts(tmp_path, tiny_llama_dir):
    """A fresh LoRA adapter is a no-op, so the KL to the reference is 0; with gamma = lam = 1 and a constant
    reward of 1 every return is 1; at ratio 1 the clipped policy loss is minus the mean of whitened
    advantages, 0; the value loss is half the mean squared distance of the values from 1."""
    cfg = _cfg(tmp_path, tiny_llama_dir, gamma=1.0, lam=1.0, kl_coef=0.5, vf_coef=0.25)
    trainer = build_trainer(cfg, tmp_path / "run")
    rollout = trainer._rollout([trainer.train_dataset[i] for i in range(2)], "train")
    mask = rollout["mask"]
    assert trainer._metrics["train"]["kl"] == [0.0]
    assert torch.allclose(rollout["returns"][mask], torch.ones(int(mask.sum())))
    expected_value_loss = 0.5 * ((rollout["old_values"][mask] - 1.0) ** 2).mean()
    with torch.no_grad():
        loss = trainer._loss(trainer.model, rollout, "train")
    metrics = trainer._metrics["train"]
    assert metrics["policy_loss"][0] == pytest.approx(0.0, abs=1e-6)
    assert metrics["value_loss"][0] == pytest.approx(float(expected_value_loss), rel=1e-5)
    assert metrics["clipfrac"][0] == 0.0
    assert float(loss) == pytest.approx(0.25 * float(expected_value_loss), rel=1e-5)


# measured 2026-11-23 with torch 2.13.0 CPU, transformers 5.23.0, peft 0.21.2, trl 1.16.0 (constraints.txt):
# the length reward, two rollouts of 2 prompts, each trained on for 2 PPO epochs (4 optimizer steps), seed 42
# (the policy loss of a rollout's first update is 0: ratio 1, whitened advantages)
EXPECTED = {
    "loss": [0.0678, 0.0404, 0.0214, 0.0085],
    "policy_loss": [0.0, -0.0159, 0.0, -0.0119],
    "value_loss": [0.678, 0.5633, 0.2138, 0.204],
    "reward": [0.4583, 0.0833],  # logged once per rollout
    "kl": [0.0, 0.0006],
}


def test_fixed_seed_losses(tmp_path, tiny_llama_dir):
    cfg = _cfg(tmp_path, tiny_llama_dir, num_ppo_epochs=2, kl_coef=0.1)
    cfg["stage"]["reward_funcs"] = [{"function": "length", "target_length": 12}]
    cfg["train"]["max_steps"] = 4
    trainer = build_trainer(cfg, tmp_path / "run")
    trainer.train()
    logs = [e for e in trainer.state.log_history if "loss" in e]
    got = {k: [round(e[k], 4) for e in logs if k in e] for k in EXPECTED}
    for key, values in EXPECTED.items():
        assert got[key] == pytest.approx(values, abs=2e-3), key
