"""The `speed:` switches, each opt-in or auto-enabled in one named place; which stages take which
is declared in `tuneforge.speed.support`.

- `tuneforge.speed.chunked_loss`: next-token loss from hidden states in row chunks, so the full
  [tokens x vocab] logits are never materialised (`speed.chunked_cross_entropy`).
- `tuneforge.speed.lora_dropout`: LoRA dropout fused into lora_A, keeping x once and the dropped
  positions (a one-byte mask off the CPU) for backward instead of a float mask and a dropped copy per
  layer (`speed.fused_lora_dropout`).
- `tuneforge.speed.lora_output`: LoRA's up-projection, scaling and sum with the base output as one
  addmm (`speed.fused_lora_output`).
- `tuneforge.speed.swiglu`: SwiGLU MLPs keep two tensors for backward, recomputing SiLU
  (`speed.fused_swiglu`).
- `tuneforge.speed.rmsnorm`: RMSNorm layers keep their input only, recomputing the normalised values
  (`speed.fused_rmsnorm`).
- `tuneforge.speed.host_memory`: glibc keeps freed memory for reuse without page faults
  (`speed.keep_freed_memory`), or gives it back to the system (`speed.return_freed_memory`).
- `tuneforge.speed.huge_pages`: big CPU tensors in transparent huge pages (`speed.huge_pages`), set
  when the `tuneforge train` process starts, before anything is allocated.
- `tuneforge.speed.unpad`: padding-free inside the decoder for the stages whose library pads
  (`speed.padding_free` for dpo, kto, orpo, simpo, rm).
- `tuneforge.data.collate`: padding-free batching (`speed.padding_free`): the samples of a batch
  are laid end to end in rows with position ids restarting per sample; `pack_dataset` packs the
  dataset itself into rows of `data.max_length` (`speed.packing`).
- `tuneforge.speed.varlen_attention`: attention over padding-free rows run once per sample, causal
  and without a mask (`speed.varlen_attention`).
- `tuneforge.data.order`: the longest samples first (`speed.longest_first`), length grouping
  (`speed.group_by_length`).
- `tuneforge.speed.setup`: applies the switches to a model and trainer (called from
  `tuneforge.training.build`, never at import time).
- `tuneforge.speed.estimate`: peak memory and tokens/s predicted before loading weights.
"""
