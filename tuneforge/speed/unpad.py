"""Padding-free inside the decoder, for stages whose library pads the batch itself (`speed.padding_free`
for dpo, kto, orpo, simpo, rm; applied by `tuneforge.speed.setup`).

TRL's preference trainers collate right-padded batches and call the model with an attention mask.
The patched decoder takes such a call, lays the real tokens of every row end to end in one row with
position ids restarting per sample (transformers then keeps the samples apart, which
`tuneforge.speed.setup.packed_attention_works` checks on the model first), runs the layers on that
row, and scatters the hidden states back into the padded shape, zeros at the padding. The heads and
the losses downstream see the same tensors as without it, so no padding token goes through a decoder
layer. With ``segments`` the sample bounds go along for per-sample sdpa (`tuneforge.speed.varlen_attention`).

Any other call (no mask, left padding, a KV cache, hidden states or attentions asked for) runs the
decoder's own forward.
"""

from __future__ import annotations

import types

import torch
from torch import nn


def _unpadded_forward(decoder: nn.Module, *args, **kwargs):
    forward = type(decoder).forward
    mask = kwargs.get("attention_mask")
    ids, embeds = kwargs.get("input_ids"), kwargs.get("inputs_embeds")
    plain = (
        args
        or mask is None
        or mask.dim() != 2
        or kwargs.get("position_ids") is not None
        or kwargs.get("past_key_values") is not None
        or kwargs.get("use_cache")
        or kwargs.get("output_hidden_states")
        or kwargs.get("output_attentions")
        or (ids if ids is not None else embeds) is None
    )
    if plain:
        return forward(decoder, *args, **kwargs)
    real = mask.bool()
    lengths = real.sum(1)
    # right padding only: each row's real tokens are its first `length` positions
    if not torch.equal(real, torch.arange(real.shape[1], device=real.device)[None] < lengths[:, None]):
        return forward(decoder, *args, **kwargs)
    if bool(real.all()):
        return forward(decoder, *args, **kwargs)
    rows, width = real.shape
    where = real.reshape(-1).nonzero().squeeze(1)
    positions = torch.cat([torch.arange(int(n), device=real.device) for n in lengths.tolist()])[None]
    skip = ("attention_mask", "input_ids", "inputs_embeds", "position_ids", "use_cache")
    call = {k: v for k, v in kwargs.items() if k not in skip}
    if ids is not None:
        call["input_ids"] = ids.reshape(-1)[where][None]
    else:
        call["inputs_embeds"] = embeds.reshape(rows * width, -1)[where][None]
    if decoder._tuneforge_segments:
        from tuneforge.speed.varlen_attention import SEGMENTS_KEY, segments_of

        call[SEGMENTS_KEY] = segments_of(positions).to(real.device)
    out = forward(decoder, attention_mask=None, position_ids=positions, use_cache=False, **call)
    hidden = out.last_hidden_state[0]
    full = hidden.new_zeros(rows * width, hidden.shape[-1]).index_copy(0, where, hidden)
    out.last_hidden_state = full.view(rows, width, -1)
    return out


def unpad_decoder(decoder: nn.Module, segments: bool = False) -> None:
    """Patch ``decoder`` (a transformers base model: LlamaModel, Qwen2Model, ...) in place."""
    decoder._tuneforge_segments = segments
    decoder.forward = types.MethodType(_unpadded_forward, decoder)


def restore_decoder(decoder: nn.Module) -> None:
    if decoder.__dict__.pop("_tuneforge_segments", None) is not None:
        del decoder.forward
