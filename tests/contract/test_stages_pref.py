"""The contract every preference stage keeps (rm, dpo, kto, orpo, simpo), on a tiny model, 2 steps:
the loss is finite, every trainable parameter changed and every frozen one did not, the reference
model is unchanged, and the TRL trainer trained on our renderer's ids (it did not tokenize again).

Adding a preference stage = one file in tuneforge/stages + a row in STAGES below + docs/stages.md.
"""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers.pref import build_stage_trainer, stage_config, write_kto, write_pairs

pytestmark = pytest.mark.filterwarnings("ignore")

# stage -> (data writer, format, the batch key holding the input ids)
STAGES = {
    "dpo": (write_pairs, "alpaca", "input_ids"),
    "kto": (write_kto, "openai", "input_ids"),
    "orpo": (write_pairs, "alpaca", "chosen_input_ids"),
    "simpo": (write_pairs, "alpaca", "chosen_input_ids"),
    "rm": (write_pairs, "alpaca", "input_ids"),
}
FULL = {"name": "full"}


def _snapshot(model) -> dict[str, tuple[bool, torch.Tensor]]:
    return {n: (p.requires_grad, p.detach().clone()) for n, p in model.named_parameters()}


def _check_changes(before, model) -> None:
    after = dict(model.named_parameters())
    trainable = [n for n, (grad, _) in before.items() if grad]
    assert trainable
    for name, (grad, old) in before.items():
        changed = not torch.equal(old, after[name].detach())
        assert changed == grad, f"{name}: trainable={grad} but changed={changed}"


# lora for every stage; full where the reference is a frozen copy of the weights
RUNS = [(stage, "lora") for stage in sorted(STAGES)] + [("dpo", "full"), ("kto", "full")]
PROBE = torch.tensor([[1, 4093, 198, 34, 27, 34, 2]])


@pytest.mark.parametrize(("stage", "method"), RUNS, ids=[f"{m}-{s}" for s, m in RUNS])
def test_two_steps_train_what_they_should(stage, method, tmp_path, tiny_llama_dir):
    write, fmt, _ = STAGES[stage]
    data = write(tmp_path / "data.json")
    cfg = stage_config(
        tmp_path, tiny_llama_dir, data, {"name": stage}, FULL if method == "full" else None, fmt
    )
    trainer = build_stage_trainer(cfg)
    before = _snapshot(trainer.model)
    ref = getattr(trainer, "ref_model", None)
    ref_before = _snapshot(ref) if ref is not None else None
    has_ref = stage in ("dpo", "kto")
    if has_ref and method == "lora":
        with torch.no_grad(), trainer.model.disable_adapter():
            base_logits = trainer.model(input_ids=PROBE).logits
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    _check_changes(before, trainer.model)
    if not has_ref:
        return
    # lora: the reference is the policy with the adapter off (no copy); full: a frozen copy
    assert (ref is None) == (method == "lora")
    if ref_before is not None:
        assert all(torch.equal(t, dict(ref.named_parameters())[n]) for n, (_, t) in ref_before.items())
    else:
        with torch.no_grad():
            with trainer.model.disable_adapter():
                assert torch.equal(trainer.model(input_ids=PROBE).logits, base_logits)
            assert not torch.equal(trainer.model(input_ids=PROBE).logits, base_logits)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_trl_does_not_tokenize_again(stage, tmp_path, tiny_llama_dir):
    """Sentinel ids no tokenizer would write for this text survive into the batch unchanged."""
    import datasets

    write, fmt, key = STAGES[stage]
    cfg = stage_config(tmp_path, tiny_llama_dir, write(tmp_path / "d.json"), {"name": stage}, None, fmt)
    sentinel = [49000, 7, 49000, 7]
    if stage == "kto":
        rows = {
            "prompt_ids": [sentinel, [5, 6]],
            "completion_ids": [[8, 2], [9, 9, 2]],
            "label": [True, False],
        }
        expected = sentinel + [8, 2]
    else:
        rows = {
            "prompt_ids": [sentinel, [5, 6]],
            "chosen_ids": [[8, 2], [9, 2]],
            "rejected_ids": [[11, 2], [12, 13, 2]],
        }
        expected = sentinel + [8, 2]
    trainer = build_stage_trainer(cfg, datasets.Dataset.from_dict(rows))
    trainer.args.per_device_train_batch_size = 2
    batch = next(iter(trainer.get_train_dataloader()))
    firsts = [row[: len(expected)].tolist() for row in batch[key]]
    assert expected in firsts, (batch[key], expected)


QLORA = {"name": "qlora", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0}


@pytest.mark.filterwarnings("ignore")
def test_qlora_dpo_trains(tmp_path, tiny_llama_dir):
    cfg = stage_config(tmp_path, tiny_llama_dir, write_pairs(tmp_path / "d.json"), {"name": "dpo"}, QLORA)
    trainer = build_stage_trainer(cfg)
    before = _snapshot(trainer.model)
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert abs(losses[0] - math.log(2)) < 1e-4  # the adapter starts as a no-op: policy == reference
    _check_changes(before, trainer.model)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("stage", ["kto", "orpo", "simpo", "rm"])
def test_qlora_trains_every_preference_stage(stage, tmp_path, tiny_llama_dir):
    """4-bit base (bitsandbytes on the CPU): finite loss, the adapter (and rm's head) train, the
    quantized base does not."""
    write, fmt, _ = STAGES[stage]
    cfg = stage_config(tmp_path, tiny_llama_dir, write(tmp_path / "d.json"), {"name": stage}, QLORA, fmt)
    trainer = build_stage_trainer(cfg)
    assert any("Params4bit" in type(p).__name__ for p in trainer.model.parameters())
    before = _snapshot(trainer.model)
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert losses and all(math.isfinite(x) for x in losses)
    _check_changes(before, trainer.model)
