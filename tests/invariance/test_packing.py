"""Packed = unpacked: samples laid end to end in one row (padding-free batches, packed datasets)
give the same per-sample losses and the same gradients as each sample run on its own, for eager
and sdpa attention; and a sample never sees another one (changing a neighbour changes nothing)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from tuneforge.data.collate import fit_rows, pack_dataset, packed_collate, pad_collate
from tuneforge.data.render import IGNORE_INDEX
from tuneforge.speed.setup import packed_attention_works


def _samples(vocab: int, lengths=(7, 19, 4, 12, 30, 9)) -> list[dict]:
    g = torch.Generator().manual_seed(1)
    out = []
    for n in lengths:
        ids = torch.randint(5, vocab, (n,), generator=g).tolist()
        labels = [IGNORE_INDEX] * (n // 3) + ids[n // 3 :]  # a masked prompt, then the answer
        out.append({"input_ids": ids, "labels": labels})
    return out


def _model(model_dir, attn: str):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation=attn, dtype=torch.float32)


def _token_losses(model, batch) -> torch.Tensor:
    """Per-position loss (0 where not trained), [rows, width]."""
    kwargs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**kwargs).logits
    target = F.pad(batch["labels"], (0, 1), value=IGNORE_INDEX)[:, 1:]
    flat = F.cross_entropy(
        logits.flatten(0, 1), target.flatten(), ignore_index=IGNORE_INDEX, reduction="none"
    )
    return flat.view(target.shape)


def _per_sample(losses: torch.Tensor, batch, n_samples: int) -> list[float]:
    """Sum of each sample's token losses in a packed batch, found through the position ids."""
    sums = []
    for r in range(losses.shape[0]):
        starts = (batch["position_ids"][r] == 0).nonzero().flatten().tolist() + [losses.shape[1]]
        for a, b in zip(starts, starts[1:], strict=False):
            sums.append(float(losses[r, a:b].sum().detach()))
    return sorted(s for s in sums if s != 0.0)[:n_samples]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_equals_unpacked_losses_and_gradients(tiny_llama_dir, attn):
    model = _model(tiny_llama_dir, attn)
    assert packed_attention_works(model)
    samples = _samples(model.config.vocab_size)

    alone, grads_alone = [], None
    model.zero_grad()
    for s in samples:
        batch = pad_collate(0)([s])
        loss = _token_losses(model, batch).sum()
        loss.backward()
        alone.append(float(loss.detach()))
    grads_alone = {n: p.grad.clone() for n, p in model.named_parameters()}

    for row_tokens in (None, 40):  # everything in one row; rows of at most 40 tokens
        model.zero_grad()
        batch = packed_collate(0, row_tokens)(samples)
        assert "attention_mask" not in batch
        assert (row_tokens is None) == (batch["input_ids"].shape[0] == 1)
        losses = _token_losses(model, batch)
        losses.sum().backward()
        torch.testing.assert_close(
            _per_sample(losses, batch, len(samples)), sorted(alone), atol=1e-4, rtol=1e-4
        )
        for n, p in model.named_parameters():
            torch.testing.assert_close(p.grad, grads_alone[n], atol=1e-5, rtol=1e-4, msg=n)


def test_a_packed_sample_never_sees_its_neighbour(tiny_llama_dir):
    model = _model(tiny_llama_dir, "sdpa").eval()
    a, b = _samples(model.config.vocab_size, (6, 6))
    changed = {"input_ids": [x + 1 for x in a["input_ids"]], "labels": a["labels"]}
    with torch.no_grad():
        one = model(**{k: v for k, v in packed_collate(0, None)([a, b]).items() if k != "labels"}).logits
        two = model(
            **{k: v for k, v in packed_collate(0, None)([changed, b]).items() if k != "labels"}
        ).logits
    torch.testing.assert_close(one[0, 6:], two[0, 6:])  # b's logits ignore what came before it
    assert not torch.allclose(one[0, :6], two[0, :6])
    # the trap the collator's use_cache=False avoids: with a KV cache transformers drops the mask
    batch = {k: v for k, v in packed_collate(0, None)([changed, b]).items() if k != "labels"}
    with torch.no_grad():
        leaky = model(**{**batch, "use_cache": True}).logits
    assert not torch.allclose(leaky[0, 6:], one[0, 6:], atol=1e-4)


def test_pack_dataset_rows_fit_and_keep_every_token():
    import datasets

    samples = _samples(1000, (50, 40, 30, 20, 10, 64, 5))
    ds = datasets.Dataset.from_list(samples)
    packed = pack_dataset(ds, max_length=64)
    assert len(packed) < len(ds)
    assert all(len(r) <= 64 for r in packed["input_ids"])
    assert sum(len(r) for r in packed["input_ids"]) == sum(len(s["input_ids"]) for s in samples)
    trained = sum(sum(x != IGNORE_INDEX for x in s["labels"][1:]) for s in samples)
    assert sum(sum(x != IGNORE_INDEX for x in r) for r in packed["labels"]) == trained
    assert sorted(i for row in fit_rows([3, 9, 2, 7], 10) for i in row) == [0, 1, 2, 3]
