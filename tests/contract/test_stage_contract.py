"""The training contract every registered stage keeps, through the CLI on tiny models (LoRA, 2 steps):
`tuneforge train` exits 0; the manifest names the stage and 2 steps; the 2 logged losses are finite;
every trainable parameter changed and every frozen one did not; and the run folder loads back
(`tuneforge.artifacts.load_run`, or `tuneforge.rewards.reward_model.load_rm_run` for `rm`) with the logits (scores) of the model
that trained, which differ from the base model's.

The rows are STAGES.names(): a new stage gets a row here and fails until ROWS says what data it trains on.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from tests.helpers.pref import write_kto, write_pairs
from tests.helpers.runs import make_config, run_cli, write_alpaca, write_config
from tuneforge.stages import STAGES

pytestmark = pytest.mark.filterwarnings("ignore")

REWARDS_PY = (
    "def alternate(completions, **kwargs):\n    return [float(i % 2) for i in range(len(completions))]\n"
)


def _text(path: Path) -> Path:
    path.write_text(
        "\n\n".join(f"Paragraph {i}: the forge heats the metal until it glows." for i in range(8))
    )
    return path


def _alternate(tmp_path: Path) -> list[str]:
    """A reward with a spread inside every group, so the policy gradient is not zero."""
    (tmp_path / "rewards.py").write_text(REWARDS_PY)
    return [f"{tmp_path / 'rewards.py'}:alternate"]


# stage -> (write the data into a path, its format, the `stage:` section beyond the name; a callable
# gets (tmp_path, tiny_qwen2_dir))
ROWS = {
    "sft": (write_alpaca, "alpaca", {}),
    "pt": (_text, "text", {}),
    "dpo": (write_pairs, "alpaca", {}),
    "kto": (write_kto, "openai", {}),
    "orpo": (write_pairs, "alpaca", {}),
    "simpo": (write_pairs, "alpaca", {}),
    "rm": (write_pairs, "alpaca", {}),
    # the teacher differs from the student (same tokenizer): with teacher == student the loss is 0
    "distill": (write_alpaca, "alpaca", lambda tmp, qwen2: {"teacher": str(qwen2), "max_new_tokens": 3}),
    "grpo": (
        write_alpaca,
        "alpaca",
        lambda tmp, _: {"reward_funcs": _alternate(tmp), "num_generations": 2, "max_completion_length": 3},
    ),
    "ppo": (
        write_alpaca,
        "alpaca",
        lambda tmp, _: {"reward_funcs": _alternate(tmp), "response_length": 3, "num_ppo_epochs": 2},
    ),
}
PROBE = torch.tensor([[1, 4093, 198, 34, 27, 34, 2]])


def _config(name: str, tmp_path: Path, model_dir: Path, teacher_dir: Path) -> Path:
    write, fmt, stage = ROWS[name]
    data = write(tmp_path / f"data.{'txt' if fmt == 'text' else 'json'}")
    stage = stage(tmp_path, teacher_dir) if callable(stage) else stage
    cfg = make_config(tmp_path, model_dir, data, stage={"name": name, **stage})
    cfg["data"]["datasets"] = [{"path": str(data), "format": fmt}]
    cfg["method"] = {"name": "lora", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0}
    cfg["train"].update(max_steps=2, save_steps=2, per_device_train_batch_size=2, logging_steps=1)
    return write_config(tmp_path, cfg)


def _spy_on_the_model(monkeypatch) -> dict:
    """Record the model a run hands its stage's trainer builder (the method applied; `tuneforge.eval.during`
    builds every stage's trainer) and its parameters then: {'model': module, 'before': {name: (trainable,
    value)}}."""
    from tuneforge.eval import during

    seen: dict = {}
    build = during.build_trainer

    def spy(stage, ctx, *args, **kwargs):
        seen["model"] = ctx.model
        seen["before"] = {n: (p.requires_grad, p.detach().clone()) for n, p in ctx.model.named_parameters()}
        return build(stage, ctx, *args, **kwargs)

    monkeypatch.setattr(during, "build_trainer", spy)
    return seen


def _check_trained_and_frozen(before: dict, model: torch.nn.Module) -> None:
    after = {n: p.detach() for n, p in model.named_parameters()}
    trainable = {n for n, (grad, _) in before.items() if grad}
    assert trainable and len(trainable) < len(before), "LoRA: some parameters train, the base does not"
    assert set(before) <= set(after), f"parameters gone after training: {sorted(set(before) - set(after))}"
    for name, (grad, old) in before.items():
        changed = not torch.equal(old, after[name])
        assert changed == grad, f"{name}: trainable={grad} but changed={changed}"


def _outputs(model, probe: torch.Tensor) -> torch.Tensor:
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        return model(input_ids=probe.to(device)).logits.float().cpu()


@pytest.mark.parametrize("name", STAGES.names())
def test_two_steps_through_the_cli(name, tmp_path, tiny_llama_dir, tiny_qwen2_dir, capsys, monkeypatch):
    if name not in ROWS:
        pytest.fail(f"stage {name!r} has no row in ROWS (its data, format and stage section)")
    path = _config(name, tmp_path, tiny_llama_dir, tiny_qwen2_dir)
    seen = _spy_on_the_model(monkeypatch)
    code, out, err = run_cli(capsys, "train", str(path))
    assert code == 0, err[-3000:]
    assert "model" in seen, "runs no longer build their trainer through tuneforge.eval.during.build_trainer"
    run_dir = tmp_path / "run"

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stage"] == name and manifest["method"] == "lora"
    assert manifest["metrics"]["global_step"] == 2
    assert manifest["artifact"] == "adapter" and (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    trainable = sum(p.numel() for n, (grad, p) in seen["before"].items() if grad)
    assert manifest["parameters"]["trainable"] == trainable
    assert 0 < trainable < manifest["parameters"]["total"]

    state = json.loads((run_dir / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    losses = [e["loss"] for e in state["log_history"] if "loss" in e]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses), losses
    assert manifest["metrics"]["last_train_loss"] == losses[-1]

    _check_trained_and_frozen(seen["before"], seen["model"])

    trained = _outputs(seen["model"], PROBE)
    if name == "rm":  # a reward model, not a causal LM: it loads as one and scores like the trained one
        from tuneforge.rewards.reward_model import load_rm_run

        loaded = load_rm_run(run_dir)
    else:
        from transformers import AutoModelForCausalLM

        from tuneforge.artifacts import load_run

        loaded = load_run(run_dir).model
        base = _outputs(AutoModelForCausalLM.from_pretrained(tiny_llama_dir), PROBE)
        assert not torch.allclose(trained, base), "training left the model's logits as they were"
    reloaded = _outputs(loaded, PROBE)
    assert torch.allclose(reloaded, trained, atol=1e-5), (reloaded - trained).abs().max()


def test_rows_name_registered_stages():
    assert set(ROWS) - set(STAGES.names()) == set(), "a row names a stage that is no longer registered"
