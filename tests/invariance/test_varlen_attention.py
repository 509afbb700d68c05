"""Varlen attention = masked sdpa = each sample alone (`speed.varlen_attention`): padding-free rows
run through sdpa once per sample give the same per-sample losses and gradients as each sample on
its own, for Llama and Qwen2 (grouped-query attention) and for LoRA; the switch is auto, refused
where it cannot apply, and leaves every call without sample bounds to plain sdpa."""

from __future__ import annotations

import pytest
import torch

from tests.invariance.test_packing import _model, _per_sample, _samples, _token_losses
from tuneforge.config.train import SpeedConfig
from tuneforge.data.collate import packed_collate, pad_collate
from tuneforge.errors import ConfigError
from tuneforge.speed.setup import apply_speedups
from tuneforge.speed.varlen_attention import (
    ATTENTION,
    SEGMENTS_KEY,
    restore_sdpa,
    segments_of,
    use_varlen_attention,
)


def test_segments_are_found_from_restarting_positions():
    pos = torch.tensor([[0, 1, 2, 0, 1, 0], [0, 1, 2, 3, 0, 1]])
    assert segments_of(pos).tolist() == [[0, 0, 3], [0, 3, 5], [0, 5, 6], [1, 0, 4], [1, 4, 6]]


def test_the_collator_adds_bounds_only_when_asked():
    samples = _samples(50, lengths=(5, 3, 4))
    plain = packed_collate(0, 8)(samples)
    assert SEGMENTS_KEY not in plain
    batch = packed_collate(0, 8, segments=True)(samples)
    assert batch[SEGMENTS_KEY].tolist() == segments_of(batch["position_ids"]).tolist()
    assert batch[SEGMENTS_KEY].shape[0] >= 3


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_varlen_equals_alone_losses_and_gradients(tiny_model_dir, lora):
    model = _model(tiny_model_dir, "sdpa")
    if lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model, LoraConfig(r=4, target_modules=["q_proj", "k_proj", "v_proj"], init_lora_weights=False)
        )
    samples = _samples(model.config.vocab_size)
    alone = []
    model.zero_grad()
    for s in samples:
        loss = _token_losses(model, pad_collate(0)([s])).sum()
        loss.backward()
        alone.append(float(loss.detach()))
    grads_alone = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    lm = model.get_base_model() if lora else model
    assert use_varlen_attention(lm) and lm.config._attn_implementation == ATTENTION
    calls = _count_sdpa_calls()
    for row_tokens in (None, 40):
        model.zero_grad()
        batch = packed_collate(0, row_tokens, segments=True)(samples)
        losses = _token_losses(model, batch)
        losses.sum().backward()
        torch.testing.assert_close(
            _per_sample(losses, batch, len(samples)), sorted(alone), atol=1e-4, rtol=1e-4
        )
        assert set(grads_alone) == {n for n, p in model.named_parameters() if p.grad is not None}
        for n, g in grads_alone.items():
            torch.testing.assert_close(dict(model.named_parameters())[n].grad, g, atol=1e-5, rtol=1e-4, msg=n)
    # every attention call of the packed forwards went through sdpa once per sample, without a mask
    layers = lm.config.num_hidden_layers
    assert calls.masks == [None] * len(calls.masks) and all(calls.causal)
    assert len(calls.masks) >= layers * len(samples)
    calls.undo()
    restore_sdpa(lm)


class _count_sdpa_calls:
    """Records the mask and is_causal of each scaled_dot_product_attention call in varlen_attention."""

    def __init__(self):
        import tuneforge.speed.varlen_attention as va

        self.module, self.masks, self.causal = va, [], []
        real = va.F.scaled_dot_product_attention

        class _F:
            def __getattr__(_, name):
                return getattr(torch.nn.functional, name)

            def scaled_dot_product_attention(_, *args, attn_mask=None, is_causal=False, **kw):
                self.masks.append(attn_mask)
                self.causal.append(is_causal)
                return real(*args, attn_mask=attn_mask, is_causal=is_causal, **kw)

        va.F = _F()

    def undo(self):
        self.module.F = torch.nn.functional


def test_calls_without_bounds_are_plain_sdpa(tiny_llama_dir):
    model = _model(tiny_llama_dir, "sdpa").eval()
    ids = torch.tensor([[0, 0, 11, 12, 13, 14], [21, 22, 23, 24, 25, 26]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask).logits
        ref_gen = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False)
        assert use_varlen_attention(model)
        torch.testing.assert_close(model(input_ids=ids, attention_mask=mask).logits, ref)
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False)
    assert out.tolist() == ref_gen.tolist()
    assert "attn_implementation" not in str(model.config.to_dict())
    restore_sdpa(model)


def test_auto_on_with_padding_free_and_sdpa_only(tiny_llama_dir):
    sdpa = _model(tiny_llama_dir, "sdpa")
    plan = apply_speedups(sdpa, SpeedConfig(), 64)
    assert plan.padding_free and plan.varlen_attention
    assert SEGMENTS_KEY in plan.collator(0)(_samples(50, lengths=(5, 3)))

    eager = _model(tiny_llama_dir, "eager")
    plan = apply_speedups(eager, SpeedConfig(), 64)
    assert plan.padding_free and not plan.varlen_attention
    assert eager.config._attn_implementation == "eager"
    with pytest.raises(ConfigError, match="varlen_attention=true needs sdpa"):
        apply_speedups(_model(tiny_llama_dir, "eager"), SpeedConfig(varlen_attention=True), 64)

    off = _model(tiny_llama_dir, "sdpa")
    plan = apply_speedups(off, SpeedConfig(varlen_attention=False), 64)
    assert not plan.varlen_attention and off.config._attn_implementation == "sdpa"
    with pytest.raises(ConfigError, match="needs padding-free rows"):
        apply_speedups(
            _model(tiny_llama_dir, "sdpa"), SpeedConfig(padding_free=False, varlen_attention=True), 64
        )


def test_prompt_learning_keeps_masked_sdpa(tiny_llama_dir):
    """Prompt tuning prepends virtual tokens inside the model, outside the collator's bounds: the
    switch stays off (refused when forced), and bounds that do not cover the tokens fall back."""
    from peft import PromptTuningConfig, get_peft_model

    def prompt_model():
        cfg = PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3)
        return get_peft_model(_model(tiny_llama_dir, "sdpa"), cfg)

    plan = apply_speedups(prompt_model(), SpeedConfig(), 64)
    assert plan.padding_free and not plan.varlen_attention
    assert any("prompt learning" in n for n in plan.notes)
    with pytest.raises(ConfigError, match="prompt-learning"):
        apply_speedups(prompt_model(), SpeedConfig(varlen_attention=True), 64)

    model = _model(tiny_llama_dir, "sdpa").eval()
    samples = _samples(model.config.vocab_size, lengths=(5, 4))
    batch = packed_collate(0, None, segments=True)(samples)
    with torch.no_grad():
        ref = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        assert use_varlen_attention(model)
        short = batch[SEGMENTS_KEY][:1]  # bounds of the first sample only
        out = model(
            input_ids=batch["input_ids"],
            position_ids=batch["position_ids"],
            use_cache=False,
            **{SEGMENTS_KEY: short},
        ).logits
    torch.testing.assert_close(out, ref)
    restore_sdpa(model)
