"""Next-token loss without the [tokens x vocab] logits (`speed.chunked_cross_entropy`).

The causal LM's forward is replaced, on this one model instance, by: run the decoder, keep the
hidden states of the positions that have a target (label != -100 after the shift), and compute the
cross-entropy through `ChunkedLinearCrossEntropy` 512 rows at a time. Each chunk's
logits are computed in float32, turned into the loss and the gradients for the hidden states and
the head weight straight away, and freed, so the peak is one chunk of logits instead of all of them
(SmolLM2: 49,152 x 4 bytes per token; Qwen2.5: 151,936). Positions without a target are never
projected at all, which also skips the head's work on prompts and padding.

The reduction is the Trainer's: the sum over trained tokens divided by ``num_items_in_batch`` when
the Trainer passes it (gradient accumulation), else the mean. Without labels (generation) the
original forward runs. On a CUDA device with Liger installed, `train.use_liger_kernel` uses Liger's
fused kernel instead (`tuneforge.speed.setup`).
"""

from __future__ import annotations

import inspect
import types
import weakref
from typing import Any

import torch
from torch import nn

IGNORE_INDEX = -100
CHUNK_ROWS = 512  # rows of logits alive at once: 512 x 49k x 4 B = 100 MB for SmolLM2


class ChunkedLinearCrossEntropy(torch.autograd.Function):
    """sum_i CE(hidden_i @ weight.T, target_i), computed and differentiated one row chunk at a time.

    The gradients are computed in the forward pass (the chunk's softmax is needed for both), kept
    (one [rows x hidden] and one [vocab x hidden] tensor, far smaller than the logits) and scaled
    by the incoming gradient in backward.
    """

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int):
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        w32 = weight.float()
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros_like(w32) if need_w else None
        # a buffer kept across calls is state torch.compile cannot trace: compiled, each chunk allocates
        buffer = (
            None if torch.compiler.is_compiling() else _logits_buffer(weight, min(chunk, hidden.shape[0]))
        )
        for start in range(0, hidden.shape[0], chunk):
            h = hidden[start : start + chunk].float()
            t = targets[start : start + chunk]
            logits = h @ w32.t() if buffer is None else torch.mm(h, w32.t(), out=buffer[: h.shape[0]])
            target_logit = logits.gather(1, t[:, None]).squeeze(1)
            # logsumexp by hand, in place in the logits buffer: torch.logsumexp makes a temporary
            # the size of the chunk, and passes over it twice more than this
            top = logits.amax(dim=-1)
            e = logits.sub_(top[:, None]).exp_()
            norm = e.sum(dim=-1)
            total += (top + norm.log() - target_logit).sum()
            # d(lse - logit_t)/dlogits = e / norm - onehot(t): the division and the onehot are
            # applied to the small products, not to the [rows x vocab] buffer
            if need_h:
                grad_h[start : start + chunk] = ((e @ w32).div_(norm[:, None]) - w32[t]).to(hidden.dtype)
            if need_w:
                grad_w.addmm_(e.t(), h / norm[:, None])
                grad_w.index_add_(0, t, h, alpha=-1.0)
            del logits, e
        ctx.save_for_backward(grad_h if need_h else None, grad_w.to(weight.dtype) if need_w else None)
        return total

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        grad_h, grad_w = ctx.saved_tensors
        gh = grad_h * grad_out.to(grad_h.dtype) if grad_h is not None else None
        gw = grad_w * grad_out.to(grad_w.dtype) if grad_w is not None else None
        return gh, gw, None, None


_BUFFERS: dict[int, torch.Tensor] = {}  # id(head weight) -> its logits buffer, dropped with the weight


def _logits_buffer(weight: torch.Tensor, rows: int) -> torch.Tensor:
    """A float32 [rows x vocab] buffer for the logits, kept per head weight (and freed with it) and
    reused by every chunk of every step: a fresh one is beyond malloc's heap (100 MB for SmolLM2),
    so the system would map and zero new pages for each chunk."""
    key = id(weight)
    buffer = _BUFFERS.get(key)
    if buffer is None or buffer.shape[0] < rows or buffer.device != weight.device:
        if key not in _BUFFERS:
            weakref.finalize(weight, _BUFFERS.pop, key, None)
        buffer = torch.empty(rows, weight.shape[0], dtype=torch.float32, device=weight.device)
        _BUFFERS[key] = buffer
    return buffer


def chunked_causal_lm_loss(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor | None,
    num_items_in_batch: torch.Tensor | int | None = None,
    shift_labels: torch.Tensor | None = None,
    chunk: int = CHUNK_ROWS,
) -> torch.Tensor:
    """The loss `transformers.loss.loss_utils.ForCausalLMLoss` computes from ``lm_head(hidden)``."""
    if shift_labels is None:
        shift_labels = nn.functional.pad(labels, (0, 1), value=IGNORE_INDEX)[..., 1:]
    shift_labels = shift_labels.reshape(-1).to(hidden.device)
    keep = shift_labels != IGNORE_INDEX
    rows = hidden.reshape(-1, hidden.shape[-1])[keep]
    total = ChunkedLinearCrossEntropy.apply(rows, weight, shift_labels[keep], chunk)
    if num_items_in_batch is None:
        return total / keep.sum().clamp(min=1)
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(total.device)
    return total / num_items_in_batch


def patch_chunked_loss(model: nn.Module, chunk: int = CHUNK_ROWS) -> bool:
    """Replace the forward of the causal LM inside ``model`` (a PEFT wrapper or the model itself)
    with the chunked-loss forward. Returns False, changing nothing, when the model's head is not a
    plain bias-free Linear (e.g. LoRA on lm_head) or it post-processes logits (soft-capping)."""
    lm = causal_lm(model)
    head = lm.get_output_embeddings()
    if type(head) is not nn.Linear or head.bias is not None or getattr(lm, "_tuneforge_chunked", False):
        return False
    cfg = lm.config.get_text_config() if hasattr(lm.config, "get_text_config") else lm.config
    if getattr(cfg, "final_logit_softcapping", None) or getattr(cfg, "logit_scale", None):
        return False
    original = lm.forward

    def forward(self, *args: Any, labels=None, shift_labels=None, num_items_in_batch=None, **kwargs):
        if (labels is None and shift_labels is None) or args:
            extra = {} if labels is None else {"labels": labels}
            return original(*args, **extra, **kwargs)
        from transformers.modeling_outputs import CausalLMOutputWithPast

        kwargs.pop("logits_to_keep", None)
        kwargs["use_cache"] = False
        out = self.get_decoder()(**kwargs)
        loss = chunked_causal_lm_loss(
            out.last_hidden_state,
            self.get_output_embeddings().weight,
            labels,
            num_items_in_batch,
            shift_labels,
            chunk,
        )
        return CausalLMOutputWithPast(loss=loss, logits=None)

    # generate() validates its kwargs against forward's signature when prepare_inputs_for_generation
    # takes **kwargs (PEFT's prompt learning does), so the patch shows the original signature
    forward.__signature__ = inspect.signature(getattr(original, "__func__", original))
    lm.forward = types.MethodType(forward, lm)
    lm._tuneforge_chunked = original
    return True


def unpatch_chunked_loss(model: nn.Module) -> None:
    lm = causal_lm(model)
    original = getattr(lm, "_tuneforge_chunked", None)
    if original:
        lm.forward = original
        del lm._tuneforge_chunked


def causal_lm(model: nn.Module) -> nn.Module:
    """The transformers CausalLM inside a PEFT wrapper (peft injects its layers in place, so the
    decoder called from here still runs them)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model
