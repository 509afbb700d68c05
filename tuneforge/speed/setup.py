"""The one place the speed switches of `train:` are applied to a model and a trainer (called by
`tuneforge.stages._base.build_causal_lm_trainer`; other stages can call `apply_speedups` too).

Auto switches (``None``) turn on only where they are exact for this model, checked on the model
itself with a tiny forward pass rather than assumed from its family:
- chunked_cross_entropy: the patched loss must equal the model's own loss;
- padding_free: packed logits must equal the logits of the samples run one by one;
- varlen_attention: the same check, with sdpa run once per sample (`tuneforge.speed.varlen_attention`);
- fused_lora_dropout: every plain LoRA layer with dropout (`tuneforge.speed.lora_dropout`);
- fused_lora_output: every plain LoRA layer (`tuneforge.speed.lora_output`);
- fused_swiglu: every MLP whose class computes SwiGLU, probed once per class (`tuneforge.speed.swiglu`);
- fused_rmsnorm: every RMSNorm whose class computes Llama's norm, probed once per class
  (`tuneforge.speed.rmsnorm`);
- keep_freed_memory: under glibc when CPU tensors lie in huge pages, unless return_freed_memory is
  on (`tuneforge.speed.host_memory`);
- return_freed_memory is opt-in (same module): it trades speed for memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from tuneforge.errors import ConfigError
from tuneforge.speed.chunked_loss import causal_lm as _lm

log = logging.getLogger("tuneforge")

PROBE_LENGTHS = (5, 3)


@dataclass
class SpeedPlan:
    """What was turned on, and the collator that goes with it."""

    chunked_cross_entropy: bool = False
    padding_free: bool = False
    varlen_attention: bool = False
    fused_lora_dropout: int = 0  # LoRA layers whose dropout was fused
    return_freed_memory: bool = False
    keep_freed_memory: bool = False
    fused_lora_output: int = 0  # LoRA layers whose output is one addmm
    fused_swiglu: int = 0  # MLPs patched
    fused_rmsnorm: int = 0  # norms patched
    packing: bool = False
    row_tokens: int | None = None
    notes: list[str] = field(default_factory=list)

    def collator(self, pad_token_id: int) -> Callable:
        from tuneforge.speed.collate import packed_collate
        from tuneforge.trainer import pad_collate

        if self.padding_free or self.packing:
            return packed_collate(pad_token_id, self.row_tokens, segments=self.varlen_attention)
        return pad_collate(pad_token_id)


def apply_speedups(model: torch.nn.Module, train_cfg, max_length: int) -> SpeedPlan:
    """Apply `train.chunked_cross_entropy` / `fused_lora_dropout` / `fused_lora_output` / `fused_swiglu` /
    `fused_rmsnorm` / `keep_freed_memory` / `return_freed_memory` / `padding_free` /
    `varlen_attention` / `packing` to ``model`` and say which."""
    from tuneforge.speed.chunked_loss import patch_chunked_loss, unpatch_chunked_loss

    plan = SpeedPlan(packing=train_cfg.packing, row_tokens=max_length)
    if train_cfg.use_liger_kernel:
        _check_liger()
    want_ce = train_cfg.chunked_cross_entropy
    if want_ce is not False and not train_cfg.use_liger_kernel:
        if patch_chunked_loss(model):
            if want_ce is None and not _loss_agrees(model):
                unpatch_chunked_loss(model)
                plan.notes.append("chunked cross-entropy off: it did not match this model's loss")
            else:
                plan.chunked_cross_entropy = True
        elif want_ce:
            raise ConfigError(
                "train.chunked_cross_entropy=true, but this model's output head is not a plain Linear "
                "(LoRA on lm_head, a bias, or soft-capped logits); set it to null or false"
            )
    from tuneforge.speed.lora_dropout import fuse_lora_dropout
    from tuneforge.speed.lora_output import fuse_lora_output
    from tuneforge.speed.rmsnorm import fuse_rmsnorm
    from tuneforge.speed.swiglu import fuse_swiglu

    plan.fused_lora_dropout = _switch(
        train_cfg.fused_lora_dropout,
        lambda: fuse_lora_dropout(model),
        "train.fused_lora_dropout=true, but no plain LoRA layer has dropout (it needs "
        "method.lora_dropout > 0 and no DoRA); set it to null or false",
    )
    plan.fused_lora_output = _switch(
        train_cfg.fused_lora_output,
        lambda: fuse_lora_output(model),
        "train.fused_lora_output=true, but no plain LoRA layer was found (it needs LoRA on nn.Linear "
        "layers without DoRA or lora_bias); set it to null or false",
    )
    plan.fused_swiglu = _switch(
        train_cfg.fused_swiglu,
        lambda: fuse_swiglu(model),
        "train.fused_swiglu=true, but no MLP of this model computes down(silu(gate(x)) * up(x)); "
        "set it to null or false",
    )
    plan.fused_rmsnorm = _switch(
        train_cfg.fused_rmsnorm,
        lambda: fuse_rmsnorm(model),
        "train.fused_rmsnorm=true, but no norm of this model computes weight * x * rsqrt(mean(x^2) + eps) "
        "(Llama's RMSNorm); set it to null or false",
    )
    _host_memory(train_cfg, plan)
    want_pf = train_cfg.padding_free
    if want_pf or train_cfg.packing or want_pf is None:
        ok = packed_attention_works(model)
        if not ok and (want_pf or train_cfg.packing):
            key = "train.packing" if train_cfg.packing else "train.padding_free"
            raise ConfigError(
                f"{key}=true, but this model/attention backend lets packed samples attend to each other "
                "(transformers did not build a block-diagonal mask from position ids); set "
                f"{key}=false, or model.attn_implementation=sdpa"
            )
        plan.padding_free = ok
        if not ok:
            plan.notes.append("padding-free off: this model does not keep packed samples apart")
    plan.varlen_attention = _varlen_attention(model, train_cfg.varlen_attention, plan)
    log.info(
        "speed: chunked_cross_entropy=%s padding_free=%s varlen_attention=%s packing=%s "
        "fused_lora_dropout=%d layers fused_lora_output=%d layers "
        "fused_swiglu=%d MLPs fused_rmsnorm=%d norms keep_freed_memory=%s return_freed_memory=%s %s",
        plan.chunked_cross_entropy,
        plan.padding_free,
        plan.varlen_attention,
        plan.packing,
        plan.fused_lora_dropout,
        plan.fused_lora_output,
        plan.fused_swiglu,
        plan.fused_rmsnorm,
        plan.keep_freed_memory,
        plan.return_freed_memory,
        "; ".join(plan.notes),
    )
    return plan


def _host_memory(train_cfg, plan: SpeedPlan) -> None:
    """`train.keep_freed_memory` (auto with huge pages) or `train.return_freed_memory` (opt-in):
    what glibc does with freed tensors (`tuneforge.speed.host_memory`)."""
    from tuneforge.speed.host_memory import fix_mmap_threshold, keep_freed_memory
    from tuneforge.speed.huge_pages import in_effect as huge_pages_in_effect

    want_keep, want_return = train_cfg.keep_freed_memory, train_cfg.return_freed_memory
    if want_keep and want_return:
        raise ConfigError(
            "train.keep_freed_memory=true and train.return_freed_memory=true ask for opposite things; "
            "set one of them to false (keep: faster steps; return: less memory)"
        )
    plan.return_freed_memory = bool(
        _switch(
            want_return,
            fix_mmap_threshold,
            "train.return_freed_memory=true needs glibc (Linux); this C library is not it; set it to false",
        )
    )
    if want_return:
        return
    if want_keep is None and not huge_pages_in_effect():
        want_keep = False  # measured: with 64-byte aligned blocks the never-trimmed heap fragments
        plan.notes.append("keep_freed_memory off: CPU tensors are not in huge pages")
    plan.keep_freed_memory = bool(
        _switch(
            want_keep,
            keep_freed_memory,
            "train.keep_freed_memory=true needs glibc (Linux); this C library is not it; set it to null",
        )
    )


def _switch(want: bool | None, apply: Callable[[], int], refusal: str) -> int:
    """A switch that is on when ``want`` is None (auto) or True: ``apply`` says how much it changed;
    True that finds nothing to change is a ConfigError (``refusal``), False does nothing."""
    if want is False:
        return 0
    done = apply()
    if want and not done:
        raise ConfigError(refusal)
    return int(done)


def _varlen_attention(model, want: bool | None, plan: SpeedPlan) -> bool:
    """`train.varlen_attention`: on for padding-free rows when the model uses sdpa and its packed
    logits still equal the separate ones with sdpa run per sample."""
    from tuneforge.speed.varlen_attention import restore_sdpa, use_varlen_attention

    if want is False:
        return False
    if not (plan.padding_free or plan.packing):
        if want:
            raise ConfigError(
                "train.varlen_attention=true needs padding-free rows (train.padding_free or "
                "train.packing), which are off; turn one on or set varlen_attention to null"
            )
        return False
    if getattr(getattr(model, "active_peft_config", None), "is_prompt_learning", False):
        if want:
            raise ConfigError(
                "train.varlen_attention=true does not work with prompt-learning methods (their virtual "
                "tokens are added inside the model, outside the sample bounds); set it to null or false"
            )
        plan.notes.append("varlen attention off: prompt learning adds tokens inside the model")
        return False
    lm = _lm(model)
    if use_varlen_attention(lm) and packed_attention_works(model, segments=True):
        return True
    restore_sdpa(lm)
    if want:
        raise ConfigError(
            f"train.varlen_attention=true needs sdpa attention; this model uses "
            f"{lm.config._attn_implementation!r} (or its packed logits differed); set "
            "model.attn_implementation=sdpa, or varlen_attention to null"
        )
    plan.notes.append("varlen attention off: the model does not use sdpa")
    return False


def _probe_ids(model) -> list[torch.Tensor]:
    vocab = _lm(model).config.get_text_config().vocab_size
    g = torch.Generator().manual_seed(0)
    return [torch.randint(0, vocab, (n,), generator=g) for n in PROBE_LENGTHS]


@torch.no_grad()
def packed_attention_works(model, segments: bool = False) -> bool:
    """True when this model, run on two samples packed in one row with restarting position ids and
    no attention mask (``segments``: with the samples' bounds for varlen attention), gives the same
    logits as on each sample alone."""
    lm = _lm(model)
    device = next(lm.parameters()).device
    seqs = [s.to(device) for s in _probe_ids(model)]
    was_training = lm.training
    lm.eval()
    try:
        alone = [lm(input_ids=s[None], use_cache=False).logits[0].float() for s in seqs]
        ids = torch.cat(seqs)[None]
        pos = torch.cat([torch.arange(len(s), device=device) for s in seqs])[None]
        extra = {}
        if segments:
            from tuneforge.speed.varlen_attention import SEGMENTS_KEY, segments_of

            extra[SEGMENTS_KEY] = segments_of(pos).to(device)
        packed = lm(input_ids=ids, position_ids=pos, use_cache=False, **extra).logits[0].float()
    finally:
        lm.train(was_training)
    return torch.allclose(packed, torch.cat(alone), atol=1e-3, rtol=1e-3)


@torch.no_grad()
def _loss_agrees(model) -> bool:
    from tuneforge.speed.chunked_loss import chunked_causal_lm_loss

    lm = _lm(model)
    device = next(lm.parameters()).device
    ids = torch.cat(_probe_ids(model)).to(device)[None]
    was_training = lm.training
    lm.eval()
    try:
        ref = lm(
            input_ids=ids, labels=ids, use_cache=False
        )  # patched forward -> original path needs no labels
        hidden_out = lm.get_decoder()(input_ids=ids, use_cache=False).last_hidden_state
        ours = chunked_causal_lm_loss(hidden_out, lm.get_output_embeddings().weight, ids)
        plain = lm._tuneforge_chunked(input_ids=ids, labels=ids, use_cache=False).loss
    finally:
        lm.train(was_training)
    return bool(torch.allclose(ref.loss.float(), plain.float(), rtol=1e-3)) and bool(
        torch.allclose(ours.float(), plain.float(), rtol=1e-3)
    )


def _check_liger() -> None:
    import importlib.util

    if importlib.util.find_spec("liger_kernel") is None:
        raise ConfigError("train.use_liger_kernel=true needs `pip install liger-kernel` (CUDA GPUs only)")
    if not torch.cuda.is_available():
        raise ConfigError("train.use_liger_kernel=true needs a CUDA GPU; set it to false on CPU")
