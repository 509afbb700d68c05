"""`tuneforge estimate CONFIG`: peak memory and tokens/s predicted before any weight is loaded.

Inputs: the model's config.json (parameter counts by shape), the prepared data (lengths, from the
cache when it is there), the method (what trains), the `speed:` switches as the stage takes them,
the stage's cost (`StageCost`: a pair runs its prompt once per side, DPO and KTO a reference pass)
and this machine's matmul speed measured for a few seconds now. The model:

    peak = process baseline (measured: this process after imports) + weights + gradients and AdamW
           state of the trained parameters + activations of the largest batch + loss buffer
    activations per token and layer (float32, Llama-style block, sdpa/eager):
           8 h + 4 kv + 4 i floats, + heads x row length (attention probabilities, CPU math path),
           + what LoRA keeps when it targets every linear layer (`_lora_floats`: its inputs, and
           its dropout's masks and copies, fewer with speed.fused_lora_dropout)
    loss buffer: one chunk of logits with chunked cross-entropy, else 3 x tokens x vocab floats
           (logits, log-softmax, their gradient)
    tokens/s = matmul FLOP/s x EFFICIENCY (x LORA_EFFICIENCY) / FLOPs per token (6 N for full fine-tuning, 4 N + the
           trained share for LoRA; N = matmul parameters, the head counted on trained tokens only
           when the loss is chunked)

EFFICIENCY, LORA_EFFICIENCY and the constants are fitted to bench/bench_sft.py runs (each fit and
its check by bench/estimate_check.py are in bench/RESULTS.md); the target is +-25 %.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass

EFFICIENCY = 0.5  # share of the GEMM peak a training step reaches (fitted to the bench)
# a LoRA step also spends time outside the big matmuls (the adapters' thin matmuls, dropout masks),
# so it reaches a smaller share than a full fine-tuning step (fitted to the bench)
LORA_EFFICIENCY = 0.8
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "auto": 4}


@dataclass(frozen=True)
class StageCost:
    """What one training sample of a stage costs beyond one forward and backward pass (each stage
    module declares ``COST``; None for stages whose step is dominated by generation)."""

    prompt_passes: int = 1  # forward/backward passes over the prompt (a pair: once per side)
    reference_passes: int = 0  # no-grad forward passes over the same tokens (reference model, KL batch)
    head: str = "lm"  # "lm": a loss over the vocabulary; "score": a reward model's scalar head


@dataclass
class Shape:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_hidden: int
    vocab: int
    tied: bool

    @property
    def layer_params(self) -> int:
        h = self.hidden
        return 2 * h * h + 2 * h * self.kv_hidden + 3 * h * self.intermediate + 2 * h

    @property
    def total_params(self) -> int:
        embed = self.vocab * self.hidden
        return self.layers * self.layer_params + embed + (0 if self.tied else embed) + self.hidden


@dataclass
class Estimate:
    params: int
    trainable: int
    peak_mb: float
    tokens_per_s: float
    parts_mb: dict[str, float]
    tokens_per_step: float
    matmul_gflops: float


def shape_of(config) -> Shape:
    c = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = c.num_attention_heads
    kv = c.hidden_size * getattr(c, "num_key_value_heads", heads) // heads
    return Shape(
        c.hidden_size,
        c.intermediate_size,
        c.num_hidden_layers,
        heads,
        kv,
        c.vocab_size,
        bool(getattr(c, "tie_word_embeddings", False)),
    )


def trainable_params(shape: Shape, method_cfg) -> int:
    """Parameters the method trains (LoRA: r x (in + out) per targeted linear layer)."""
    if method_cfg.name in ("lora", "qlora"):
        h, kv, i, r = shape.hidden, shape.kv_hidden, shape.intermediate, method_cfg.r
        dims = {
            "q_proj": (h, h),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (h, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }
        targets = dims if method_cfg.target_modules == "all-linear" else method_cfg.target_modules
        return shape.layers * sum(r * sum(dims[t]) for t in targets if t in dims)
    return shape.total_params  # full; freeze and others: an upper bound


def matmul_flops(seconds: float = 2.0) -> float:
    import torch

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    return n * 2 * 1024**3 / (time.perf_counter() - t0)


def estimate(
    cfg,
    config,
    lengths: list[int],
    trained_share: float,
    flops: float | None = None,
    speed=None,
    cost: StageCost = StageCost(),  # noqa: B008 (frozen)
    chunked_by: str | None = "tuneforge",
) -> Estimate:
    """Predict the peak resident memory and tokens/s of training ``cfg`` on data of ``lengths``
    (``speed``: the `speed:` section resolved for the stage, default ``cfg.speed``; ``cost`` and
    ``chunked_by``: the stage's declarations)."""
    s, t = shape_of(config), speed or cfg.speed
    b = BYTES[cfg.model.dtype]
    lora = cfg.method.name in ("lora", "qlora")
    trainable = trainable_params(s, cfg.method)
    per_device = cfg.train.per_device_train_batch_size
    batch = sorted(lengths, reverse=True)[:per_device]
    padding_free = t.padding_free is not False or t.packing
    if t.packing:  # rows of max_length, full
        batch = [cfg.data.max_length] * per_device
    # a pair's prompt is run once per side: its tokens (the untrained share) count again
    repeat = 1 + (cost.prompt_passes - 1) * (1 - trained_share)
    tokens = (sum(batch) if padding_free else max(batch) * len(batch)) * repeat
    row = min(cfg.data.max_length, sum(batch)) if padding_free else max(batch)
    # varlen attention (auto with padding-free rows) keeps no [row x row] mask and scores each
    # sample alone; padded or masked attention keeps a score row per token and head
    varlen = padding_free and t.varlen_attention is not False
    per_token_layer = 8 * s.hidden + 4 * s.kv_hidden + 4 * s.intermediate + (0 if varlen else s.heads * row)
    if lora:
        per_token_layer += _lora_floats(s, cfg.method, t)
    if t.fused_swiglu is not False and getattr(config, "hidden_act", None) in ("silu", "swish"):
        per_token_layer -= s.intermediate  # SiLU's output is recomputed, not kept
        if not lora:
            per_token_layer -= s.intermediate  # and, down_proj being trained, its input too
    if t.fused_rmsnorm is not False and not lora:
        per_token_layer -= 2 * s.hidden  # two norms per layer keep their input only
    if cfg.train.gradient_checkpointing:
        per_token_layer = s.hidden + (per_token_layer / s.layers)  # inputs kept, one layer recomputed
    chunked = chunked_by == "trl" or (chunked_by == "tuneforge" and t.chunked_cross_entropy is not False)
    from tuneforge.speed.chunked_loss import CHUNK_ROWS

    trained_tokens = tokens * trained_share
    loss_floats = min(trained_tokens, CHUNK_ROWS) * s.vocab if chunked else 3 * tokens * s.vocab
    if cost.head == "score":
        loss_floats = 0
    # a reference model is the policy with its adapter off, or (training every weight) a frozen copy
    copies = 2 if cost.reference_passes and trainable == s.total_params else 1
    mb = 1 / 2**20
    parts = {
        "process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "weights": copies * s.total_params * b * mb,
        "gradients + AdamW": trainable * 4 * 3 * mb,
        "activations": tokens * s.layers * per_token_layer * 4 * mb,
        "loss": loss_floats * 4 * mb,
    }
    flops = flops or matmul_flops()
    n_body = s.layers * (s.layer_params - 2 * s.hidden)
    head = s.hidden * s.vocab * (trained_share if chunked else 1.0)
    avg = sum(lengths) / len(lengths)
    context = avg if varlen else row
    if cost.head == "score":
        head = 0
    per_token = (6 if not lora else 4) * (n_body + head) + 6 * s.layers * s.hidden * context
    per_token = per_token * repeat + cost.reference_passes * repeat * 2 * (n_body + s.hidden * s.vocab)
    useful = 1.0 if padding_free else avg / _expected_max(lengths, per_device)
    return Estimate(
        params=s.total_params,
        trainable=trainable,
        peak_mb=sum(parts.values()),
        tokens_per_s=flops * EFFICIENCY * (LORA_EFFICIENCY if lora else 1.0) * useful / per_token,
        parts_mb=parts,
        tokens_per_step=per_device * avg,
        matmul_gflops=flops / 1e9,
    )


def _lora_floats(s: Shape, method_cfg, t) -> float:
    """Floats per token and layer that LoRA on every projection keeps for backward (counted with
    saved-tensor hooks on SmolLM2): the projections' inputs, 2 h + i (q/k/v and gate/up share
    theirs); with PEFT's dropout instead a float mask and a dropped copy per projection, 12 h + 2 i;
    with the fused dropout the inputs plus, per projection input, the int32 positions of the dropped
    elements (on the CPU, which this estimate times): p (6 h + i)."""
    inputs = 2 * s.hidden + s.intermediate
    p = getattr(method_cfg, "lora_dropout", 0)
    if not p:
        return inputs
    if t.fused_lora_dropout is False:
        return 12 * s.hidden + 2 * s.intermediate
    return inputs + p * (6 * s.hidden + s.intermediate)


def _expected_max(lengths: list[int], k: int) -> float:
    """Mean of the longest of k random samples (padded batches pay for it)."""
    import random

    rng = random.Random(0)
    draws = [max(rng.sample(lengths, min(k, len(lengths)))) for _ in range(200)]
    return sum(draws) / len(draws)
