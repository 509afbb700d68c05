"""Expected first-step losses of the preference stages, from facts that hold for any model:
with the policy equal to its reference (a fresh LoRA adapter is a no-op), every DPO log-ratio is 0,
so sigmoid gives log 2, IPO (1 / (2 beta))^2, hinge 1 and KTO 1 - sigmoid(0) = 0.5; with the chosen
answer equal to the rejected one, SimPO gives log(1 + e^gamma), ORPO its NLL + beta log 2 and the
reward model log 2. The loss is computed on one batch of our data, without an optimizer step."""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers.pref import build_stage_trainer, stage_config, write_kto, write_pairs

pytestmark = pytest.mark.filterwarnings("ignore")


def _first_batch_loss(trainer):
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    with torch.no_grad():
        return float(trainer.compute_loss(trainer.model, batch))


def test_dpo_losses_with_policy_equal_to_reference(tmp_path, tiny_llama_dir):
    cfg = stage_config(
        tmp_path, tiny_llama_dir, write_pairs(tmp_path / "d.json"), {"name": "dpo", "beta": 0.1}
    )
    trainer = build_stage_trainer(cfg)
    for loss_type, expected in [("sigmoid", math.log(2)), ("ipo", (1 / (2 * 0.1)) ** 2), ("hinge", 1.0),
                                ("robust", math.log(2))]:  # fmt: skip
        trainer.loss_types, trainer.loss_weights = [loss_type], [1.0]
        assert _first_batch_loss(trainer) == pytest.approx(expected, abs=1e-5), loss_type


def test_kto_loss_with_policy_equal_to_reference(tmp_path, tiny_llama_dir):
    cfg = stage_config(
        tmp_path, tiny_llama_dir, write_kto(tmp_path / "d.json"), {"name": "kto"}, fmt="openai"
    )
    assert _first_batch_loss(build_stage_trainer(cfg)) == pytest.approx(0.5, abs=1e-5)


def test_simpo_orpo_rm_losses_with_equal_answers(tmp_path, tiny_llama_dir):
    data = write_pairs(tmp_path / "d.json", same_answers=True)
    simpo = build_stage_trainer(
        stage_config(tmp_path, tiny_llama_dir, data, {"name": "simpo", "simpo_gamma": 0.5})
    )
    assert _first_batch_loss(simpo) == pytest.approx(math.log(1 + math.exp(0.5)), abs=1e-5)

    orpo = build_stage_trainer(stage_config(tmp_path, tiny_llama_dir, data, {"name": "orpo", "beta": 0.1}))
    loss = _first_batch_loss(orpo)
    nll = orpo._stored_metrics["train"]["nll_loss"][-1]
    assert loss - nll == pytest.approx(0.1 * math.log(2), abs=1e-5)

    rm = build_stage_trainer(stage_config(tmp_path, tiny_llama_dir, data, {"name": "rm"}))
    assert _first_batch_loss(rm) == pytest.approx(math.log(2), abs=1e-5)


def test_orpo_nll_trains_only_the_answer(tmp_path, tiny_llama_dir):
    """TRL's ORPO puts the prompt into its NLL term; ours uses the renderer's labels (the answer)."""
    data = write_pairs(tmp_path / "d.json")
    orpo = build_stage_trainer(stage_config(tmp_path, tiny_llama_dir, data, {"name": "orpo"}))
    batch = orpo._prepare_inputs(next(iter(orpo.get_train_dataloader())))
    with torch.no_grad():
        nll = orpo.concatenated_forward(orpo.model, batch)[4]
        logits = orpo.model(batch["chosen_input_ids"], attention_mask=batch["chosen_attention_mask"]).logits
    expected = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]),
        batch["chosen_labels"][:, 1:].reshape(-1),
        ignore_index=-100,
    )
    assert float(nll) == pytest.approx(float(expected), abs=1e-4)


def test_dpo_precomputed_reference_log_probs(tmp_path, tiny_llama_dir):
    """Full fine-tuning with precompute_ref_log_probs keeps no reference copy: the reference
    log-probabilities are columns of the data, computed once from the starting weights."""
    stage = {"name": "dpo", "precompute_ref_log_probs": True}
    cfg = stage_config(tmp_path, tiny_llama_dir, write_pairs(tmp_path / "d.json"), stage, {"name": "full"})
    trainer = build_stage_trainer(cfg)
    assert trainer.ref_model is None
    assert {"ref_chosen_logps", "ref_rejected_logps"} <= set(trainer.train_dataset.column_names)
    assert _first_batch_loss(trainer) == pytest.approx(math.log(2), abs=1e-5)
