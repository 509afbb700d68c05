"""Gradient accumulation is normalised over the whole accumulated batch: batch 2 x accumulation 4
gives the same loss and the same update as batch 8 x accumulation 1, even though the samples have
different numbers of trained tokens (the classic per-micro-batch-mean bug would differ)."""

from __future__ import annotations

import torch

from tests.helpers.runs import make_config, write_alpaca


def _one_step(tmp_path, model_dir, data, batch: int, accum: int):
    from transformers import AutoModelForCausalLM

    from tuneforge.config.load import load_config
    from tuneforge.train import run_training

    cfg = make_config(tmp_path / f"b{batch}", model_dir, data, method={"name": "full"})
    del cfg["method"]["r"], cfg["method"]["lora_alpha"]
    cfg["train"].update(
        max_steps=1,
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=accum,
        optim="sgd",
        learning_rate=1.0,
        max_grad_norm=0.0,
        save_steps=100,
    )
    run_dir = run_training(load_config(None, data=cfg))
    import json

    manifest = json.loads((run_dir / "manifest.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(run_dir / "model")
    return manifest["metrics"]["train_loss"], dict(model.named_parameters())


def test_batch_2x4_equals_8x1(tmp_path, tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    # answers of very different lengths so that per-micro-batch means would weigh tokens unequally
    rows = [
        {"instruction": f"Question {i}?", "input": "", "output": "yes " * (1 + 5 * (i % 4))} for i in range(8)
    ]
    data = write_alpaca(tmp_path / "d.json", rows)
    loss_a, params_a = _one_step(tmp_path, tiny_llama_dir, data, batch=8, accum=1)
    loss_b, params_b = _one_step(tmp_path, tiny_llama_dir, data, batch=2, accum=4)
    base = dict(AutoModelForCausalLM.from_pretrained(tiny_llama_dir).named_parameters())
    assert abs(loss_a - loss_b) < 1e-4, (loss_a, loss_b)
    moved = 0
    for name, p in params_a.items():
        update_a, update_b = p - base[name], params_b[name] - base[name]  # lr=1, SGD: update = -grad
        torch.testing.assert_close(update_a, update_b, atol=2e-6, rtol=1e-4, msg=name)
        moved += int(update_a.abs().max() > 0)
    assert moved > len(params_a) // 2
