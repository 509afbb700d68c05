"""Speed, memory and scale switches (issue 5), each opt-in or auto-enabled in one named place.

- `tuneforge.speed.chunked_loss`: next-token loss from hidden states in row chunks, so the full
  [tokens x vocab] logits are never materialised (`train.chunked_cross_entropy`).
- `tuneforge.speed.lora_dropout`: LoRA dropout fused into lora_A, keeping x once and the dropped
  positions (a one-byte mask off the CPU) for backward instead of a float mask and a dropped copy per
  layer (`train.fused_lora_dropout`).
- `tuneforge.speed.lora_output`: LoRA's up-projection, scaling and sum with the base output as one
  addmm (`train.fused_lora_output`).
- `tuneforge.speed.swiglu`: SwiGLU MLPs keep two tensors for backward, recomputing SiLU
  (`train.fused_swiglu`).
- `tuneforge.speed.rmsnorm`: RMSNorm layers keep their input only, recomputing the normalised values
  (`train.fused_rmsnorm`).
- `tuneforge.speed.host_memory`: glibc keeps freed memory for reuse without page faults
  (`train.keep_freed_memory`), or gives it back to the system (`train.return_freed_memory`).
- `tuneforge.speed.huge_pages`: big CPU tensors in transparent huge pages (`train.huge_pages`), set
  when a run starts, before anything is allocated.
- `tuneforge.speed.collate`: padding-free batching (`train.padding_free`): the samples of a batch
  are laid end to end in rows with position ids restarting per sample; `packing.py` packs the
  dataset itself into rows of `data.max_length` (`train.packing`).
- `tuneforge.speed.varlen_attention`: attention over padding-free rows run once per sample, causal
  and without a mask (`train.varlen_attention`).
- `tuneforge.speed.samplers`: the longest samples first (`train.longest_first`), length grouping
  (`train.group_by_length`).
- `tuneforge.speed.setup`: applies the switches to a model and trainer (called from the stage's
  trainer builder, never at import time).
- `tuneforge.speed.launch` / `distributed`: torchrun re-launch, DeepSpeed / FSDP2 configs.
- `tuneforge.speed.estimate`: peak memory and tokens/s predicted before loading weights.
"""

# `train:` fields read by tuneforge.speed rather than passed to transformers' TrainingArguments
TRAIN_FIELDS = frozenset(
    {
        "packing",
        "padding_free",
        "varlen_attention",
        "chunked_cross_entropy",
        "fused_lora_dropout",
        "fused_lora_output",
        "return_freed_memory",
        "keep_freed_memory",
        "huge_pages",
        "fused_swiglu",
        "fused_rmsnorm",
        "longest_first",
        "group_by_length",
        "activation_offloading",
        "nproc_per_node",
        "nnodes",
        "node_rank",
        "master_addr",
        "master_port",
        "distributed",
        "distributed_offload",
    }
)
