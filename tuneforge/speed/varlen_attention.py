"""Per-sample causal attention for padding-free rows (`speed.varlen_attention`).

Where it sits: `tuneforge.speed.setup.apply_speedups` switches a padding-free model's attention to
the function below, and `tuneforge.data.collate.packed_collate` adds each batch's sample bounds
(``packed_segments``) to the batch, which the model passes down to every attention call.

Why: for a row of packed samples, transformers' sdpa path builds a block-diagonal causal mask from
the position ids, so every head of every layer scores the whole row against itself (row length
squared) and then masks most of it away; with a mask, SDPA cannot skip the masked blocks. Run once
per sample with ``is_causal=True`` instead, SDPA only scores each sample's own causal triangle,
without any mask tensor (the float mask a masked SDPA keeps for backward is row length squared per
layer). The result is the same attention, up to float rounding
(`tests/invariance/test_varlen_attention.py`).

Any call without ``packed_segments`` (evaluation with padding, generation with a KV cache) goes to
transformers' own sdpa function unchanged, with the mask transformers built for sdpa.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

ATTENTION = "tuneforge_sdpa_varlen"
SEGMENTS_KEY = "packed_segments"


def segments_of(position_ids: torch.Tensor) -> torch.Tensor:
    """``[n, 3]`` rows (row, start, end) of the samples in a padding-free batch: a sample starts
    wherever its position id is 0."""
    out = []
    for r, pos in enumerate(position_ids.tolist()):
        starts = [i for i, p in enumerate(pos) if p == 0] or [0]
        ends = starts[1:] + [len(pos)]
        out += [(r, s, e) for s, e in zip(starts, ends, strict=True)]
    return torch.tensor(out, dtype=torch.long)


def varlen_sdpa_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    packed_segments: torch.Tensor | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature: query [batch, heads, tokens, dim], key and value
    [batch, kv heads, tokens, dim]; returns [batch, tokens, heads, dim]."""
    bounds = None if packed_segments is None else packed_segments.tolist()
    sizes: list[list[int]] = [[] for _ in range(query.shape[0])]
    for r, start, end in bounds or ():
        sizes[r].append(end - start)
    # the bounds must cover exactly these tokens, row by row: no KV cache, no tokens added inside the
    # model (prompt tuning's virtual tokens); else the masked path transformers prepared
    if (
        not bounds
        or query.shape[2] != key.shape[2]
        or any(sum(row) != query.shape[2] for row in sizes)
        or kwargs.get("position_bias") is not None
    ):
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module,
            query,
            key,
            value,
            attention_mask,
            dropout=dropout,
            scaling=scaling,
            is_causal=is_causal,
            **kwargs,
        )
    gqa = query.shape[1] != key.shape[1]
    rows = []
    # unbind and split, not slicing: their backward puts the pieces' gradients together in one
    # stack or cat, where each slice's backward would fill a zero tensor of the whole input
    for q_row, k_row, v_row, row in zip(query.unbind(0), key.unbind(0), value.unbind(0), sizes, strict=True):
        parts = [
            F.scaled_dot_product_attention(
                q[None], k[None], v[None], dropout_p=dropout, scale=scaling, is_causal=True, enable_gqa=gqa
            )
            for q, k, v in zip(
                q_row.split(row, dim=1), k_row.split(row, dim=1), v_row.split(row, dim=1), strict=True
            )
        ]
        rows.append(torch.cat(parts, dim=2))
    out = torch.cat(rows, dim=0)
    return out.transpose(1, 2).contiguous(), None


def register() -> None:
    """Make ``ATTENTION`` a name transformers knows (idempotent; called when the switch is applied,
    not at import). Its masks are sdpa's, for the calls that fall through to sdpa."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    AttentionInterface.register(ATTENTION, varlen_sdpa_attention)
    AttentionMaskInterface.register(ATTENTION, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])


def use_varlen_attention(lm: nn.Module) -> bool:
    """Switch ``lm`` (a transformers causal LM) from sdpa to ``ATTENTION``; False, changing nothing,
    when it does not use sdpa (eager, flash-attention and others are left as they are)."""
    if getattr(lm.config, "_attn_implementation", None) != "sdpa":
        return False
    register()
    lm.set_attn_implementation(ATTENTION)
    return lm.config._attn_implementation == ATTENTION


def restore_sdpa(lm: nn.Module) -> None:
    if getattr(lm.config, "_attn_implementation", None) == ATTENTION:
        lm.set_attn_implementation("sdpa")
