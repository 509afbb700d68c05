"""The `train:`, `speed:` and `scale:` sections of the config (see `tuneforge.config.schema`).

`train:` holds what Hugging Face's TrainingArguments know under the same names (mapped field by
field in `tuneforge.training.arguments`); `speed:` the switches tuneforge applies itself
(`tuneforge.speed`), each declared per stage; `scale:` how many processes and machines run and how
they share the model (`tuneforge.scale`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TrainConfig(Section):
    learning_rate: float = Field(1e-4, gt=0, description="Peak learning rate.")
    num_train_epochs: float = Field(1.0, gt=0, description="Epochs (ignored when max_steps > 0).")
    max_steps: int = Field(-1, description="Optimizer steps; -1 means use num_train_epochs.")
    per_device_train_batch_size: int = Field(4, gt=0, description="Samples per step per device.")
    per_device_eval_batch_size: int = Field(8, gt=0, description="Samples per eval step.")
    gradient_accumulation_steps: int = Field(1, gt=0, description="Micro-batches per optimizer step.")
    lr_scheduler_type: str = Field("cosine", description="HF scheduler name (linear, cosine, constant, ...).")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Share of steps for linear warm-up.")
    warmup_steps: int = Field(
        0, ge=0, description="Steps of linear warm-up (overrides warmup_ratio when > 0)."
    )
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, ge=0, description="Gradient clipping norm (0 disables).")
    optim: str = Field(
        "adamw_torch",
        description="HF optimizer name (adamw_torch, adamw_bnb_8bit for 8-bit AdamW states, sgd, ...); "
        "the galore and apollo methods set their own.",
    )
    seed: int = Field(42, ge=0, description="Seed for model init, dropout and data order.")
    logging_steps: int = Field(5, gt=0, description="Log the loss every N steps.")
    save_steps: int = Field(100, gt=0, description="Write a checkpoint every N steps.")
    save_total_limit: int | None = Field(2, description="Keep at most this many checkpoints.")
    eval_steps: int | None = Field(None, description="Evaluate every N steps (default: save_steps).")
    bf16: bool = Field(False, description="bfloat16 autocast (CPUs with AVX512-BF16, recent GPUs).")
    fp16: bool = Field(False, description="float16 autocast (GPUs).")
    gradient_checkpointing: bool = Field(False, description="Recompute activations to save memory.")
    resume_from_checkpoint: str | None = Field(
        None, description="'auto' resumes from the latest complete checkpoint; or a checkpoint path."
    )
    allow_changed_resume: bool = Field(
        False,
        description="Resume even when the data or the method settings differ from the checkpoint's "
        "(the differences are printed); by default such a resume is refused.",
    )
    report_to: list[str] = Field(
        default_factory=lambda: ["tensorboard"], description="Loggers: tensorboard, wandb, none."
    )
    dataloader_num_workers: int = Field(0, ge=0, description="Data loader worker processes.")
    num_threads: int | None = Field(
        None,
        gt=0,
        description="CPU threads PyTorch uses in each training process. null: OMP_NUM_THREADS where "
        "set, else the cores other processes leave free when the command starts (printed as 'threads:').",
    )
    neftune_noise_alpha: float | None = Field(
        None,
        gt=0,
        description="NEFTune: uniform noise of scale alpha / sqrt(length x hidden) on the input "
        "embeddings while training (Jain et al. 2023; the paper uses 5); works with every method.",
    )
    gradient_checkpointing_kwargs: dict | None = Field(
        None, description="Passed to gradient_checkpointing_enable, e.g. {use_reentrant: false}."
    )
    torch_compile: bool = Field(False, description="torch.compile the model (slow first steps).")
    use_liger_kernel: bool = Field(
        False, description="Liger's fused kernels (CUDA GPU, `pip install liger-kernel`)."
    )
    metric_for_best_model: str | None = Field(
        None,
        description="Metric that picks the best checkpoint: 'loss' (eval loss) or '<task label>/<metric>' "
        "of an `eval:` task, e.g. 'arith/exact_match'.",
    )
    greater_is_better: bool | None = Field(
        None, description="Whether a larger metric_for_best_model is better (default: all but losses)."
    )
    load_best_model_at_end: bool = Field(
        False, description="Load the best checkpoint by metric_for_best_model at the end and save that."
    )

    @field_validator("optim")
    @classmethod
    def _known_optim(cls, value: str) -> str:
        from transformers.training_args import OptimizerNames

        names = [o.value for o in OptimizerNames]
        if value not in names:
            from tuneforge.registry import did_you_mean

            raise ValueError(f"unknown optimizer {value!r}: {did_you_mean(value, names)}")
        return value

    @field_validator("lr_scheduler_type")
    @classmethod
    def _known_scheduler(cls, value: str) -> str:
        from transformers import SchedulerType

        return _one_of(value, [s.value for s in SchedulerType], "scheduler")

    @field_validator("report_to")
    @classmethod
    def _known_loggers(cls, value: list[str]) -> list[str]:
        from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

        for name in value:
            _one_of(name, [*INTEGRATION_TO_CALLBACK, "none"], "logger")
        return value

    @model_validator(mode="after")
    def _one_half_precision(self):
        if self.bf16 and self.fp16:
            raise ValueError("bf16 and fp16 are both true; choose one (bf16 where the hardware has it)")
        return self


def _one_of(value: str, names: list[str], what: str) -> str:
    if value not in names:
        from tuneforge.registry import did_you_mean

        raise ValueError(f"unknown {what} {value!r}: {did_you_mean(value, names)}")
    return value


class SpeedConfig(Section):
    packing: bool = Field(
        False,
        description="Pack samples into rows of data.max_length tokens before batching (each sample "
        "attends only to itself); per_device_train_batch_size then counts rows.",
    )
    padding_free: bool | None = Field(
        None,
        description="Lay each batch's samples end to end with restarting position ids instead of "
        "padding. null: on when the model keeps packed samples apart (checked at start).",
    )
    varlen_attention: bool | None = Field(
        None,
        description="With padding-free rows, run sdpa once per sample (causal, no mask) instead of "
        "over the whole row with a block-diagonal mask. null: on when the model uses sdpa and its "
        "packed logits match (checked at start).",
    )
    chunked_cross_entropy: bool | None = Field(
        None,
        description="Compute the loss from hidden states in chunks, never the full tokens x vocab "
        "logits. null: on when it matches the model's own loss (checked at start).",
    )
    fused_lora_dropout: bool | None = Field(
        None,
        description="LoRA dropout computed inside lora_A, keeping x once and the dropped positions "
        "instead of a float mask and a dropped copy per layer. null: on for every plain LoRA layer "
        "with lora_dropout > 0.",
    )
    fused_lora_output: bool | None = Field(
        None,
        description="A LoRA layer's lora_B product, scaling and sum with the base output as one "
        "addmm instead of three passes over the output (the same sum up to float rounding). null: on "
        "for every plain LoRA layer (no DoRA or other variant, no LoRA bias).",
    )
    fused_swiglu: bool | None = Field(
        None,
        description="SwiGLU MLPs keep gate and up outputs for backward and recompute SiLU, instead "
        "of keeping three tensors (bitwise the same gradients). null: on for every MLP whose class "
        "computes down(silu(gate(x)) * up(x)) (checked at start).",
    )
    fused_rmsnorm: bool | None = Field(
        None,
        description="RMSNorm layers keep their input and one float per token for backward and "
        "recompute the normalised values (bitwise the same gradients). null: on for every norm whose "
        "class computes weight * x * rsqrt(mean(x^2) + eps) (checked at start).",
    )
    return_freed_memory: bool = Field(
        False,
        description="Fix glibc's mmap threshold at 1 MiB so freed tensors from 1 MiB up go back to the "
        "system instead of staying in the heap: less peak memory, but slower steps (each big "
        "allocation maps fresh pages). For runs that would not fit otherwise.",
    )
    keep_freed_memory: bool | None = Field(
        None,
        description="glibc serves every allocation from its heap and never trims it, so freed "
        "tensors' pages are reused without page faults in later steps (the same numbers; the process "
        "keeps its peak memory until it exits). null: on under glibc when CPU tensors lie in huge "
        "pages (speed.huge_pages) and return_freed_memory is false.",
    )
    huge_pages: bool | None = Field(
        None,
        description="Back CPU tensors of 2 MiB and more with transparent huge pages (PyTorch's "
        "THP_MEM_ALLOC_ENABLE, set when the run starts): fewer TLB misses and page faults, the same "
        "numbers. null: on where the kernel offers them (transparent_hugepage mode madvise or always).",
    )
    longest_first: bool = Field(
        True,
        description="Make the first batch the longest samples (per-device batch size x processes), so "
        "out-of-memory shows at step 1 and memory peaks at once.",
    )
    group_by_length: bool = Field(
        False, description="Batch samples of similar length together (less padding when not padding-free)."
    )
    activation_offloading: bool = Field(
        False, description="Keep saved activations in CPU memory during the forward pass (GPU only)."
    )

    @model_validator(mode="after")
    def _one_freed_memory_policy(self):
        if self.keep_freed_memory and self.return_freed_memory:
            raise ValueError(
                "keep_freed_memory=true and return_freed_memory=true ask for opposite things; set one of "
                "them to false (keep: faster steps; return: less memory)"
            )
        return self


class ScaleConfig(Section):
    nproc_per_node: int = Field(
        1, gt=0, description="Processes on this machine; above 1 `tuneforge train` launches torchrun itself."
    )
    nnodes: int = Field(1, gt=0, description="Machines in the run (run the same command on each).")
    node_rank: int = Field(0, ge=0, description="This machine's index among nnodes.")
    master_addr: str | None = Field(
        None, description="Address of the rank-0 machine (multi-node); null: a local standalone run."
    )
    master_port: int = Field(29500, description="Rendezvous port on master_addr.")
    engine: Literal["ddp", "fsdp2", "zero2", "zero3"] = Field(
        "ddp",
        description="How several processes share the work: ddp (replicas), fsdp2 (sharded, torch), "
        "zero2 / zero3 (DeepSpeed, `pip install deepspeed`).",
    )
    offload: bool = Field(
        False, description="Offload optimizer state (zero2/zero3) or parameters (zero3, fsdp2) to CPU."
    )
