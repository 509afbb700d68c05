"""`speed.fused_lora_output` on = off: LoRA layers whose output is one addmm give the same loss and
gradients as PEFT's forward (to float rounding), a disabled adapter still gives the base model, and
layers PEFT computes another way (DoRA) are left alone."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from tuneforge.config.train import SpeedConfig
from tuneforge.errors import ConfigError
from tuneforge.speed.lora_output import fuse_lora_output, unfuse_lora_output
from tuneforge.speed.setup import apply_speedups

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _lora(model_dir, **kw):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    cfg = LoraConfig(
        r=4, lora_alpha=8, target_modules=TARGETS, lora_dropout=0.0, init_lora_weights=False, **kw
    )
    return get_peft_model(model, cfg)


def _step(model, ids):
    model.zero_grad()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_fused_output_gives_the_same_step(tiny_model_dir):
    model = _lora(tiny_model_dir)
    ids = torch.randint(0, 1000, (2, 24), generator=torch.Generator().manual_seed(0))
    plain_loss, plain = _step(model, ids)
    assert fuse_lora_output(model) == 7 * 2  # every target of both layers
    loss, fused = _step(model, ids)
    torch.testing.assert_close(loss, plain_loss, rtol=1e-6, atol=1e-6)
    assert fused.keys() == plain.keys() and len(fused) == 2 * 7 * 2
    for name in plain:
        torch.testing.assert_close(fused[name], plain[name], rtol=1e-4, atol=1e-6, msg=name)
    unfuse_lora_output(model)
    assert not any("forward" in m.__dict__ for m in model.modules() if hasattr(m, "lora_A"))


def test_a_disabled_adapter_is_still_the_base_model(tiny_llama_dir):
    model = _lora(tiny_llama_dir).eval()
    ids = torch.randint(0, 1000, (1, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        with model.disable_adapter():
            base = model(input_ids=ids).logits
        tuned = model(input_ids=ids).logits
        fuse_lora_output(model)
        with model.disable_adapter():
            torch.testing.assert_close(model(input_ids=ids).logits, base)
        torch.testing.assert_close(model(input_ids=ids).logits, tuned, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(base, tuned)


def test_dora_is_left_alone(tiny_llama_dir):
    assert fuse_lora_output(_lora(tiny_llama_dir, use_dora=True)) == 0
    with pytest.raises(ConfigError, match="fused_lora_output"):
        apply_speedups(_lora(tiny_llama_dir, use_dora=True), SpeedConfig(fused_lora_output=True), 64)
    assert apply_speedups(_lora(tiny_llama_dir), SpeedConfig(), 64).fused_lora_output == 14
