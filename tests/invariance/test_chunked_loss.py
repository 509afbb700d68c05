"""Chunked cross-entropy = the model's own loss: same loss and gradients, for a LoRA-wrapped model
(frozen, tied head) and full fine-tuning (the tied embedding/head weight gets the head's gradient),
with and without the Trainer's num_items_in_batch; and generation still gets logits."""

from __future__ import annotations

import pytest
import torch

from tuneforge.data.render import IGNORE_INDEX
from tuneforge.speed.chunked_loss import chunked_causal_lm_loss, patch_chunked_loss, unpatch_chunked_loss


def _batch(vocab: int):
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(5, vocab, (3, 17), generator=g)
    labels = ids.clone()
    labels[:, :6] = IGNORE_INDEX
    labels[2, 12:] = IGNORE_INDEX  # padding
    return ids, labels


def _loss_and_grads(model, ids, labels, n_items):
    model.zero_grad()
    kwargs = {} if n_items is None else {"num_items_in_batch": torch.tensor(n_items)}
    loss = model(input_ids=ids, labels=labels, **kwargs).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("method", ["lora", "full"])
@pytest.mark.parametrize("n_items", [None, 50])
def test_chunked_equals_plain(tiny_llama_dir, method, n_items):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    if method == "lora":
        model = get_peft_model(
            model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        )
    ids, labels = _batch(model.config.vocab_size)
    plain, plain_grads = _loss_and_grads(model, ids, labels, n_items)
    assert patch_chunked_loss(model)
    out = model(input_ids=ids, labels=labels)
    assert out.logits is None  # the logits were never built
    chunked, chunked_grads = _loss_and_grads(model, ids, labels, n_items)
    torch.testing.assert_close(chunked, plain, atol=1e-5, rtol=1e-5)
    assert plain_grads.keys() == chunked_grads.keys() and plain_grads
    for name, g in plain_grads.items():
        torch.testing.assert_close(chunked_grads[name], g, atol=1e-6, rtol=1e-4, msg=name)
    assert model(input_ids=ids).logits.shape == (*ids.shape, model.config.vocab_size)  # no labels: plain
    unpatch_chunked_loss(model)
    # unpatched: full logits and the model's own loss and gradients again, bit for bit
    assert model(input_ids=ids, labels=labels).logits.shape == (*ids.shape, model.config.vocab_size)
    restored, restored_grads = _loss_and_grads(model, ids, labels, n_items)
    torch.testing.assert_close(restored, plain, atol=0, rtol=0)
    assert restored_grads.keys() == plain_grads.keys()
    for name, g in plain_grads.items():
        torch.testing.assert_close(restored_grads[name], g, atol=0, rtol=0, msg=name)


def test_small_chunks_match_one_chunk():
    torch.manual_seed(0)
    hidden = torch.randn(2, 9, 8, requires_grad=True)
    weight = torch.randn(50, 8, requires_grad=True)
    labels = torch.randint(0, 50, (2, 9))
    labels[0, :3] = IGNORE_INDEX
    grads = []
    for chunk in (1, 4, 1000):
        loss = chunked_causal_lm_loss(hidden, weight, labels, chunk=chunk)
        g = torch.autograd.grad(loss * 3.0, (hidden, weight))  # a scaled upstream gradient
        grads.append((loss.detach(), *g))
    ref_logits = hidden @ weight.t()
    ref = torch.nn.functional.cross_entropy(ref_logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten())
    for loss, gh, gw in grads:
        torch.testing.assert_close(loss, ref.detach())
        torch.testing.assert_close(gh, grads[-1][1])
        torch.testing.assert_close(gw, grads[-1][2])


def test_patched_prompt_learning_model_still_generates(tiny_llama_dir):
    """generate() checks its kwargs against forward's signature when prepare_inputs_for_generation
    takes **kwargs (PEFT prompt learning): the patched forward must show the original signature."""
    import inspect

    from peft import PromptTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_llama_dir),
        PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4),
    )
    assert patch_chunked_loss(model)
    lm = model.get_base_model()
    assert "input_ids" in inspect.signature(lm.forward).parameters
    ids = torch.tensor([[1, 5, 6, 7]])
    out = model.generate(
        input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=3, do_sample=False
    )
    assert out.shape == (1, 7)
