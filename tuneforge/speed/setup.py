"""The one place the `speed:` switches are applied to a model (called by
`tuneforge.training.build.build_trainer` for every stage, with the stage's declaration from
`tuneforge.speed.support`; never at import time).

Auto switches (``None``) turn on only where they are exact for this model, checked on the model
itself with a tiny forward pass rather than assumed from its family:
- chunked_cross_entropy: the patched loss must equal the model's own loss;
- padding_free: packed logits (or hidden states) must equal those of the samples run one by one;
- varlen_attention: the same check, with sdpa run once per sample (`tuneforge.speed.varlen_attention`);
- fused_lora_dropout / fused_lora_output: every plain LoRA layer (`tuneforge.speed.lora_dropout`,
  `tuneforge.speed.lora_output`);
- fused_swiglu / fused_rmsnorm: every MLP / norm whose class computes Llama's, probed once per class.
The process-wide memory switches (huge pages, what glibc does with freed memory) are set when the
`tuneforge train` process starts (`tuneforge.commands.train.start_process`); here they are only
checked and reported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from tuneforge.config.train import SpeedConfig
from tuneforge.errors import ConfigError
from tuneforge.speed.chunked_loss import causal_lm as _lm
from tuneforge.speed.support import CAUSAL_LM, StageSpeed

log = logging.getLogger("tuneforge")

PROBE_LENGTHS = (5, 3)


@dataclass
class SpeedPlan:
    """What was turned on, and the collator that goes with it."""

    chunked_cross_entropy: bool = False
    padding_free: bool = False  # rows from the collator, or (unpadded) inside the decoder
    unpadded: bool = False
    varlen_attention: bool = False
    fused_lora_dropout: int = 0  # LoRA layers whose dropout was fused
    fused_lora_output: int = 0  # LoRA layers whose output is one addmm
    fused_swiglu: int = 0  # MLPs patched
    fused_rmsnorm: int = 0  # norms patched
    packing: bool = False
    row_tokens: int | None = None
    longest_first: bool = False
    group_by_length: bool = False
    activation_offloading: bool = False
    huge_pages: bool = False
    freed_memory: str | None = None  # "keep" or "return": the allocator setting of this process
    notes: list[str] = field(default_factory=list)

    def collator(self, pad_token_id: int) -> Callable:
        """The causal-LM stages' collator: padding-free rows, or padding to the longest sample."""
        from tuneforge.data.collate import packed_collate, pad_collate

        if (self.padding_free and not self.unpadded) or self.packing:
            return packed_collate(pad_token_id, self.row_tokens, segments=self.varlen_attention)
        return pad_collate(pad_token_id)


def apply_speedups(
    model: torch.nn.Module,
    speed: SpeedConfig,
    max_length: int,
    support: StageSpeed = CAUSAL_LM,
    liger: bool = False,
) -> SpeedPlan:
    """Apply the `speed:` switches ``support`` lets this stage take to ``model`` and say which
    (``speed`` has already been resolved for the stage by `tuneforge.speed.support.resolve`)."""
    from tuneforge.speed.chunked_loss import patch_chunked_loss, unpatch_chunked_loss

    plan = SpeedPlan(
        packing=speed.packing,
        row_tokens=max_length,
        longest_first=speed.longest_first,
        group_by_length=speed.group_by_length,
        activation_offloading=speed.activation_offloading,
    )
    if liger:
        _check_liger()
    want_ce = speed.chunked_cross_entropy
    if support.chunked_cross_entropy == "tuneforge" and want_ce is not False and not liger:
        if patch_chunked_loss(model):
            if want_ce is None and not _loss_agrees(model):
                unpatch_chunked_loss(model)
                plan.notes.append("chunked cross-entropy off: it did not match this model's loss")
            else:
                plan.chunked_cross_entropy = True
        elif want_ce:
            raise ConfigError(
                "speed.chunked_cross_entropy=true, but this model's output head is not a plain Linear "
                "(LoRA on lm_head, a bias, or soft-capped logits); set it to null or false"
            )
    elif support.chunked_cross_entropy == "trl":
        plan.notes.append("chunked loss: TRL's fused LM head")
    from tuneforge.speed.lora_dropout import fuse_lora_dropout
    from tuneforge.speed.lora_output import fuse_lora_output
    from tuneforge.speed.rmsnorm import fuse_rmsnorm
    from tuneforge.speed.swiglu import fuse_swiglu

    plan.fused_lora_dropout = _switch(
        speed.fused_lora_dropout,
        lambda: fuse_lora_dropout(model),
        "speed.fused_lora_dropout=true, but no plain LoRA layer has dropout (it needs "
        "method.lora_dropout > 0 and no DoRA); set it to null or false",
    )
    plan.fused_lora_output = _switch(
        speed.fused_lora_output,
        lambda: fuse_lora_output(model),
        "speed.fused_lora_output=true, but no plain LoRA layer was found (it needs LoRA on nn.Linear "
        "layers without DoRA or lora_bias); set it to null or false",
    )
    plan.fused_swiglu = _switch(
        speed.fused_swiglu,
        lambda: fuse_swiglu(model),
        "speed.fused_swiglu=true, but no MLP of this model computes down(silu(gate(x)) * up(x)); "
        "set it to null or false",
    )
    plan.fused_rmsnorm = _switch(
        speed.fused_rmsnorm,
        lambda: fuse_rmsnorm(model),
        "speed.fused_rmsnorm=true, but no norm of this model computes weight * x * rsqrt(mean(x^2) + eps) "
        "(Llama's RMSNorm); set it to null or false",
    )
    _process_memory(speed, plan)
    want_pf = speed.padding_free
    if support.padding_free and (want_pf or speed.packing or want_pf is None):
        ok = packed_attention_works(model)
        if not ok and (want_pf or speed.packing):
            key = "speed.packing" if speed.packing else "speed.padding_free"
            raise ConfigError(
                f"{key}=true, but this model/attention backend lets packed samples attend to each other "
                "(transformers did not build a block-diagonal mask from position ids); set "
                f"{key}=false, or model.attn_implementation=sdpa"
            )
        plan.padding_free = ok
        if not ok:
            plan.notes.append("padding-free off: this model does not keep packed samples apart")
    plan.varlen_attention = _varlen_attention(model, speed.varlen_attention, plan)
    if plan.padding_free and support.padding_free == "unpad":
        from tuneforge.speed.unpad import unpad_decoder

        unpad_decoder(_decoder(model), segments=plan.varlen_attention)
        plan.unpadded = True
    log.info(
        "speed: chunked_cross_entropy=%s padding_free=%s varlen_attention=%s packing=%s "
        "fused_lora_dropout=%d layers fused_lora_output=%d layers fused_swiglu=%d MLPs "
        "fused_rmsnorm=%d norms huge_pages=%s freed_memory=%s %s",
        plan.chunked_cross_entropy,
        plan.padding_free and ("unpadded" if plan.unpadded else "rows"),
        plan.varlen_attention,
        plan.packing,
        plan.fused_lora_dropout,
        plan.fused_lora_output,
        plan.fused_swiglu,
        plan.fused_rmsnorm,
        plan.huge_pages,
        plan.freed_memory or "glibc default",
        "; ".join(plan.notes),
    )
    return plan


def _process_memory(speed: SpeedConfig, plan: SpeedPlan) -> None:
    """The process-wide switches as the process start left them: huge pages and what glibc does with
    freed memory. A switch forced on that the process start did not set is refused, never applied
    here: a run called from Python leaves the process's allocator as it found it."""
    from tuneforge.speed.host_memory import APPLIED
    from tuneforge.speed.huge_pages import check_huge_pages

    plan.huge_pages, why_not = check_huge_pages(speed.huge_pages)
    if why_not:
        plan.notes.append(why_not)
    plan.freed_memory = APPLIED["mode"]
    for key, mode in (("keep_freed_memory", "keep"), ("return_freed_memory", "return")):
        if getattr(speed, key) and plan.freed_memory != mode:
            raise ConfigError(
                f"speed.{key}=true changes the allocator of the whole process, so only the `tuneforge "
                f"train` command sets it, when its process starts (it did not here: glibc missing, or this "
                f"run was called from Python); run `tuneforge train`, call "
                f"tuneforge.speed.host_memory.{'keep_freed_memory' if mode == 'keep' else 'fix_mmap_threshold'}() "
                f"first, or set it to null"
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
    """`speed.varlen_attention`: on for padding-free rows when the model uses sdpa and its packed
    logits still equal the separate ones with sdpa run per sample."""
    from tuneforge.speed.varlen_attention import restore_sdpa, use_varlen_attention

    if want is False:
        return False
    if not (plan.padding_free or plan.packing):
        if want:
            raise ConfigError(
                "speed.varlen_attention=true needs padding-free rows (speed.padding_free or "
                "speed.packing), which are off; turn one on or set varlen_attention to null"
            )
        return False
    if getattr(getattr(model, "active_peft_config", None), "is_prompt_learning", False):
        if want:
            raise ConfigError(
                "speed.varlen_attention=true does not work with prompt-learning methods (their virtual "
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
            f"speed.varlen_attention=true needs sdpa attention; this model uses "
            f"{lm.config._attn_implementation!r} (or its packed logits differed); set "
            "model.attn_implementation=sdpa, or varlen_attention to null"
        )
    plan.notes.append("varlen attention off: the model does not use sdpa")
    return False


def _probe_ids(model) -> list[torch.Tensor]:
    vocab = _lm(model).config.get_text_config().vocab_size
    g = torch.Generator().manual_seed(0)
    return [torch.randint(0, vocab, (n,), generator=g) for n in PROBE_LENGTHS]


def _decoder(model) -> torch.nn.Module:
    """The transformers base model (LlamaModel, ...) under a causal LM or a sequence classifier."""
    return _lm(model).base_model


@torch.no_grad()
def packed_attention_works(model, segments: bool = False) -> bool:
    """True when this model's decoder, run on two samples packed in one row with restarting position
    ids and no attention mask (``segments``: with the samples' bounds for varlen attention), gives the
    same hidden states as on each sample alone."""
    lm, decoder = _lm(model), _decoder(model)
    device = next(lm.parameters()).device
    seqs = [s.to(device) for s in _probe_ids(model)]
    was_training = lm.training
    lm.eval()
    try:
        alone = [decoder(input_ids=s[None], use_cache=False).last_hidden_state[0].float() for s in seqs]
        ids = torch.cat(seqs)[None]
        pos = torch.cat([torch.arange(len(s), device=device) for s in seqs])[None]
        extra = {}
        if segments:
            from tuneforge.speed.varlen_attention import SEGMENTS_KEY, segments_of

            extra[SEGMENTS_KEY] = segments_of(pos).to(device)
        packed = decoder(input_ids=ids, position_ids=pos, use_cache=False, **extra).last_hidden_state[0]
    finally:
        lm.train(was_training)
    return torch.allclose(packed.float(), torch.cat(alone), atol=1e-3, rtol=1e-3)


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
