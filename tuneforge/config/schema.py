"""The one typed config, nested by concern: model, data, method, stage, train, output.

Field names follow Hugging Face / TRL where an equivalent exists. Unknown keys are rejected
(``extra="forbid"``); `tuneforge.config.load` turns pydantic's errors into one-line messages
with a did-you-mean. ``method`` and ``stage`` are tagged unions over their registries: each
method or stage module defines its own ``Config`` model selected by ``name``.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tuneforge.eval.tasks import TASKS
from tuneforge.methods import METHODS
from tuneforge.stages import STAGES


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(Section):
    name_or_path: str = Field(
        description="An HF model folder, a hub id (where a hub is reachable), a .gguf file, or "
        "'package:PKG/FILE.gguf' for a GGUF file shipped inside an installed Python package."
    )
    gguf_file: str | None = Field(
        None, description="File name of the GGUF inside `name_or_path` when that is a folder."
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "float32", description="Weights dtype for training; 'auto' uses the checkpoint's dtype."
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit).")
    trust_remote_code: bool = Field(False, description="Allow model code from the hub.")
    attn_implementation: str | None = Field(
        None, description="Attention backend passed to transformers ('eager', 'sdpa', ...)."
    )


class DatasetConfig(Section):
    path: str | None = Field(
        None,
        description="A JSON/JSONL/CSV/Parquet/TXT file, a folder of them, or a `datasets` hub name.",
    )
    name: str | None = Field(
        None, description="An entry of `data.dataset_registry` (format and columns come from it)."
    )
    format: str | None = Field(
        None,
        description="Row format: alpaca, sharegpt, openai, text. Default: from the registry "
        "entry, else 'text' for .txt files or document stages (pt), and 'alpaca' otherwise.",
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Map of the format's field names to this file's column names, "
        "e.g. {instruction: question, output: answer}.",
    )
    tags: dict[str, str] = Field(
        default_factory=dict,
        description="sharegpt role tags: role_tag, content_tag, user_tag, assistant_tag, "
        "system_tag, function_tag, observation_tag.",
    )
    split: str = Field("train", description="Split to read from a hub dataset.")
    subset: str | None = Field(None, description="Hub dataset configuration name.")
    weight: float = Field(
        1.0,
        gt=0,
        description="Mixing weight: this dataset contributes round(weight x its size) samples "
        "(below 1 subsamples, above 1 repeats).",
    )
    max_samples: int | None = Field(None, gt=0, description="Keep at most this many rows.")

    @model_validator(mode="after")
    def _path_or_name(self) -> DatasetConfig:
        if (self.path is None) == (self.name is None):
            raise ValueError("give exactly one of `path` (a file or folder) or `name` (a registry entry)")
        return self


class DataConfig(Section):
    datasets: list[DatasetConfig] = Field(description="Sources to train on, mixed by weight.")
    eval_datasets: list[DatasetConfig] = Field(
        default_factory=list, description="Sources for evaluation (instead of a split)."
    )
    dataset_registry: str | None = Field(
        None,
        description="A dataset registry file (LLaMA-Factory's dataset_info.json works as is); "
        "relative paths inside it resolve against its folder.",
    )
    template: str = Field(
        "auto",
        description="Chat template: 'auto' uses the tokenizer's own; or a named one "
        "(chatml, llama3, qwen, default).",
    )
    max_length: int = Field(1024, gt=0, description="Tokens per sample after rendering.")
    train_on_prompt: bool = Field(False, description="Train on every token, prompts included.")
    mask_history: bool = Field(False, description="Train only the last assistant turn.")
    eval_split: float = Field(
        0.0,
        ge=0,
        description="Held-out share (0 < x < 1) or count (x >= 1) of samples for eval loss.",
    )
    max_samples: int | None = Field(None, gt=0, description="Keep at most this many samples in all.")
    seed: int = Field(42, description="Seed for mixing, shuffling and the eval split.")
    cache_dir: str | None = Field(
        None, description="Where tokenized data is cached. Default: $TUNEFORGE_CACHE or ~/.cache/tuneforge."
    )


MethodConfig = Annotated[Union[tuple(m.Config for m in METHODS.modules())], Field(discriminator="name")]  # noqa: UP007 (built from the registry)
StageConfig = Annotated[Union[tuple(s.Config for s in STAGES.modules())], Field(discriminator="name")]  # noqa: UP007
TaskConfigUnion = Annotated[Union[tuple(t.Config for t in TASKS.modules())], Field(discriminator="name")]  # noqa: UP007


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
    seed: int = Field(42, description="Seed for model init, dropout and data order.")
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
    report_to: list[str] = Field(
        default_factory=lambda: ["tensorboard"], description="Loggers: tensorboard, wandb, none."
    )
    dataloader_num_workers: int = Field(0, ge=0, description="Data loader worker processes.")
    neftune_noise_alpha: float | None = Field(
        None,
        gt=0,
        description="NEFTune: uniform noise of scale alpha / sqrt(length x hidden) on the input "
        "embeddings while training (Jain et al. 2023; the paper uses 5); works with every method.",
    )
    # speed and memory (tuneforge.speed; docs/speed.md)
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
        description="LoRA dropout computed inside lora_A, keeping x once and a 1-byte mask instead of "
        "a float mask and a dropped copy per layer. null: on for every plain LoRA layer with "
        "lora_dropout > 0.",
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
        "system instead of staying in the heap: about a third less peak memory, but each big "
        "allocation maps fresh pages (a third slower on 2 CPU threads). For runs that would not fit.",
    )
    keep_freed_memory: bool | None = Field(
        None,
        description="glibc serves every allocation from its heap and never trims it, so freed "
        "tensors' pages are reused without page faults in later steps (the same numbers; the process "
        "keeps its peak memory until it exits). null: on under glibc when CPU tensors lie in huge "
        "pages (train.huge_pages) and return_freed_memory is false.",
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
    gradient_checkpointing_kwargs: dict | None = Field(
        None, description="Passed to gradient_checkpointing_enable, e.g. {use_reentrant: false}."
    )
    activation_offloading: bool = Field(
        False, description="Keep saved activations in CPU memory during the forward pass (GPU only)."
    )
    torch_compile: bool = Field(False, description="torch.compile the model (slow first steps).")
    use_liger_kernel: bool = Field(
        False, description="Liger's fused kernels (CUDA GPU, `pip install liger-kernel`)."
    )
    # scale (tuneforge.speed.launch / distributed; docs/speed.md)
    nproc_per_node: int = Field(
        1, gt=0, description="Processes on this machine; above 1 `tuneforge train` launches torchrun itself."
    )
    nnodes: int = Field(1, gt=0, description="Machines in the run (run the same command on each).")
    node_rank: int = Field(0, ge=0, description="This machine's index among nnodes.")
    master_addr: str | None = Field(
        None, description="Address of the rank-0 machine (multi-node); null: a local standalone run."
    )
    master_port: int = Field(29500, description="Rendezvous port on master_addr.")
    distributed: Literal["ddp", "fsdp2", "zero2", "zero3"] = Field(
        "ddp",
        description="How several processes share the work: ddp (replicas), fsdp2 (sharded, torch), "
        "zero2 / zero3 (DeepSpeed, `pip install deepspeed`).",
    )
    distributed_offload: bool = Field(
        False, description="Offload optimizer state (zero2/zero3) or parameters (zero3, fsdp2) to CPU."
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


class OutputConfig(Section):
    dir: str = Field("runs/latest", description="Run folder: checkpoints, adapter or model, logs, manifest.")
    overwrite: bool = Field(
        False, description="Allow training into a folder that already holds a finished run."
    )
    plot_loss: bool = Field(True, description="Write loss.png at the end.")


class CompareConfig(Section):
    prompts: str | None = Field(
        None,
        description="JSONL of {prompt, answer?}: answered by the base model before training and by "
        "the trained model after, printed side by side and saved as compare.md (answers are scored).",
    )
    max_new_tokens: int = Field(64, gt=0, description="Tokens generated per answer.")
    system: str | None = Field(None, description="System message put before each prompt.")


class EvalConfig(Section):
    tasks: list[TaskConfigUnion] = Field(
        default_factory=list,
        description="Eval tasks run at every evaluation (train.eval_steps) and at the end; their numbers "
        "go to the log, TensorBoard (eval/<label>/<metric>) and manifest.json (see docs/eval.md).",
    )


class Config(Section):
    model: ModelConfig
    data: DataConfig
    method: MethodConfig = Field(
        default_factory=lambda: METHODS.get("lora").Config(),
        description="Tuning method; see `tuneforge ls methods`.",
    )
    stage: StageConfig = Field(
        default_factory=lambda: STAGES.get("sft").Config(),
        description="Training stage; see `tuneforge ls stages`.",
    )
    train: TrainConfig = Field(default_factory=TrainConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    compare: CompareConfig = Field(default_factory=CompareConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
