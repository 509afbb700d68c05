"""Building blocks of the methods PEFT lacks (`adapter`, `mam`, `unipelt`), used by their ``apply``.

- `Bottleneck`: down-projection, non-linearity, up-projection (Houlsby et al. 2019); the
  up-projection starts at zero, so an attached adapter starts as the identity.
- `LowRank`: a LoRA-style update ``B @ A`` computed from a layer's input (B starts at zero).
- `Prefix`: learned keys and values prepended in every attention layer (Li & Liang 2021),
  implemented as an attention function registered with transformers' `AttentionInterface`.

Pieces are attached with forward hooks as children of the module they adapt, so the base's own
parameter names stay unchanged and the pieces are the only new parameters. Each piece has an
``enabled`` switch; `disabled(model)` turns all of them off, which gives the base model exactly.
Optional sigmoid gates (UniPELT) scale a piece's output by ``sigmoid(gate(x))``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}
PREFIX_ATTENTION = "tuneforge_prefix"  # the attention function's registered name
PREFIX_CHILD = "tuneforge_prefix"  # the Prefix's name under each attention module


class Piece(nn.Module):
    """A trainable addition to a frozen base; ``enabled=False`` makes it a no-op."""

    enabled: bool = True


class Bottleneck(Piece):
    """``scaling * up(act(down(x)))``, optionally times ``sigmoid(gate(x))``."""

    def __init__(
        self, d_in: int, size: int, d_out: int, activation: str, scaling: float = 1.0, gate: bool = False
    ):
        super().__init__()
        self.down = nn.Linear(d_in, size)
        self.act = ACTIVATIONS[activation]()
        self.up = nn.Linear(size, d_out)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.scaling = scaling
        self.gate = _gate(d_in) if gate else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up(self.act(self.down(x.to(self.down.weight.dtype)))) * self.scaling
        return y * torch.sigmoid(self.gate(x)) if self.gate is not None else y


class LowRank(Piece):
    """``(alpha / r) * B(A(x))`` with B zero at the start, optionally times ``sigmoid(gate(x))``."""

    def __init__(self, d_in: int, d_out: int, r: int, alpha: float, gate: bool = False):
        super().__init__()
        self.lora_A = nn.Linear(d_in, r, bias=False)
        self.lora_B = nn.Linear(r, d_out, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / r
        self.gate = _gate(d_in) if gate else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lora_B(self.lora_A(x.to(self.lora_A.weight.dtype))) * self.scaling
        return y * torch.sigmoid(self.gate(x)) if self.gate is not None else y


class Prefix(Piece):
    """``num_virtual_tokens`` learned keys and values for one attention layer (after RoPE: they
    have no position). With ``gate``, both are scaled by ``sigmoid(g)``, one learned scalar."""

    def __init__(self, kv_heads: int, head_dim: int, num_virtual_tokens: int, gate: bool = False):
        super().__init__()
        self.key = nn.Parameter(torch.randn(kv_heads, num_virtual_tokens, head_dim) * 0.02)
        self.value = nn.Parameter(torch.randn(kv_heads, num_virtual_tokens, head_dim) * 0.02)
        self.gate = nn.Parameter(torch.zeros(1)) if gate else None

    def key_value(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.gate is None:
            return self.key, self.value
        g = torch.sigmoid(self.gate)
        return self.key * g, self.value * g


def _gate(d_in: int) -> nn.Linear:
    # sigmoid(0) = 0.5: a gate starts half open, as in UniPELT's implementation
    gate = nn.Linear(d_in, 1)
    nn.init.zeros_(gate.weight)
    nn.init.zeros_(gate.bias)
    return gate


def attach_after(module: nn.Module, name: str, piece: Piece) -> None:
    """A serial adapter on ``module``'s output: ``y + piece(y)`` (Houlsby / Pfeiffer placement)."""
    module.add_module(name, piece)

    def hook(mod, args, output):
        return output + piece(output).to(output.dtype) if piece.enabled else output

    module.register_forward_hook(hook)


def attach_parallel(module: nn.Module, name: str, piece: Piece) -> None:
    """A parallel branch from ``module``'s input: ``module(x) + piece(x)`` (MAM's FFN adapter, LoRA)."""
    module.add_module(name, piece)

    def hook(mod, args, output):
        return output + piece(args[0]).to(output.dtype) if piece.enabled else output

    module.register_forward_hook(hook)


def attach_prefix(model: nn.Module, attention: nn.Module, piece: Prefix) -> None:
    """Learned prefix keys/values for ``attention`` (a module with ``layer_idx``); switches the
    model to the prefix attention function, which wraps PyTorch SDPA."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(PREFIX_ATTENTION, prefix_attention)
    AttentionMaskInterface.register(PREFIX_ATTENTION, sdpa_mask)
    attention.add_module(PREFIX_CHILD, piece)
    model.config._attn_implementation = PREFIX_ATTENTION


def prefix_attention(module, query, key, value, attention_mask, **kwargs):
    """SDPA attention with the module's `Prefix` keys/values in front of the real ones;
    every query sees the whole prefix, the real keys keep their (causal/padding) mask."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    prefix = getattr(module, PREFIX_CHILD, None)
    if prefix is None or not prefix.enabled:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    batch, q_len, kv_len = query.shape[0], query.shape[2], key.shape[2]
    pk, pv = prefix.key_value()
    n = pk.shape[1]
    key = torch.cat([pk.to(key.dtype).unsqueeze(0).expand(batch, -1, -1, -1), key], dim=2)
    value = torch.cat([pv.to(value.dtype).unsqueeze(0).expand(batch, -1, -1, -1), value], dim=2)
    if attention_mask is None:  # SDPA would have used is_causal: the queries are the last q_len keys
        rows = torch.arange(q_len, device=query.device)[:, None] + (kv_len - q_len)
        attention_mask = (torch.arange(kv_len, device=query.device)[None, :] <= rows)[None, None]
    attention_mask = attention_mask[..., :kv_len]
    if attention_mask.dtype == torch.bool:
        front = torch.ones(*attention_mask.shape[:-1], n, dtype=torch.bool, device=attention_mask.device)
    else:
        front = torch.zeros(
            *attention_mask.shape[:-1], n, dtype=attention_mask.dtype, device=attention_mask.device
        )
    kwargs["is_causal"] = False
    return sdpa_attention_forward(
        module, query, key, value, torch.cat([front, attention_mask], dim=-1), **kwargs
    )


def pieces(model: nn.Module) -> list[Piece]:
    return [m for m in model.modules() if isinstance(m, Piece)]


@contextmanager
def disabled(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block every piece is off and ``model`` computes exactly its base's outputs."""
    found = pieces(model)
    for p in found:
        p.enabled = False
    try:
        yield model
    finally:
        for p in found:
            p.enabled = True


def freeze_base(model: nn.Module) -> None:
    """Only the pieces train."""
    for p in model.parameters():
        p.requires_grad_(False)
    for piece in pieces(model):
        piece.requires_grad_(True)


def attach_prefixes(
    model: nn.Module, layers: nn.ModuleList, num_virtual_tokens: int, gate: bool = False
) -> None:
    """A `Prefix` in every block's ``self_attn``, sized by the model's key/value heads."""
    text = model.config.get_text_config()
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
    for layer in layers:
        attach_prefix(model, layer.self_attn, Prefix(kv_heads, head_dim, num_virtual_tokens, gate))
