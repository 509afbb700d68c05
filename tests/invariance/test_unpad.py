"""Padding-free inside the decoder (`speed.padding_free` for the pair stages): the same loss and
gradients as the padded batch TRL's collator builds, and the decoder really ran one unpadded row."""

from __future__ import annotations

import pytest
import torch

from tests.helpers.pref import build_stage_trainer, stage_config, write_kto, write_pairs
from tuneforge.speed import unpad

PAIR_STAGES = ["dpo", "kto", "orpo", "simpo", "rm"]


def _loss_and_grads(tmp_path, model_dir, name: str, padding_free: bool):
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = write_kto(tmp_path / "kto.json") if name == "kto" else write_pairs(tmp_path / "pairs.json")
    cfg = stage_config(tmp_path, model_dir, data, {"name": name}, fmt="openai" if name == "kto" else "alpaca")
    cfg.speed.padding_free = padding_free
    cfg.speed.varlen_attention = False  # checked on its own below
    torch.manual_seed(0)
    trainer = build_stage_trainer(cfg)
    assert trainer.speed.unpadded is padding_free
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


@pytest.mark.parametrize("name", PAIR_STAGES)
def test_unpadded_equals_padded(name, tmp_path, tiny_llama_dir, monkeypatch):
    rows = []
    real = unpad._unpadded_forward

    def counting(decoder, *args, **kwargs):
        mask = kwargs.get("attention_mask")
        if mask is not None and not bool(mask.bool().all()):
            rows.append(tuple(mask.shape))
        return real(decoder, *args, **kwargs)

    monkeypatch.setattr(unpad, "_unpadded_forward", counting)
    on_loss, on_grads = _loss_and_grads(tmp_path / "on", tiny_llama_dir, name, True)
    assert rows, "the decoder never saw a padded batch: the test would pass without unpadding"
    off_loss, off_grads = _loss_and_grads(tmp_path / "off", tiny_llama_dir, name, False)
    assert torch.allclose(on_loss, off_loss, atol=1e-5, rtol=1e-4), (on_loss, off_loss)
    assert on_grads.keys() == off_grads.keys() and on_grads
    for n in on_grads:
        assert torch.allclose(on_grads[n], off_grads[n], atol=1e-5, rtol=1e-3), n


def test_varlen_attention_rides_along_for_pairs(tmp_path, tiny_llama_dir):
    cfg = stage_config(tmp_path, tiny_llama_dir, write_pairs(tmp_path / "p.json"), {"name": "dpo"})
    trainer = build_stage_trainer(cfg)
    assert trainer.speed.unpadded and trainer.speed.varlen_attention
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    assert torch.isfinite(trainer.compute_loss(trainer.model, batch))
