"""The one typed config, nested by concern: model, data, method, stage, train, output.

Field names follow Hugging Face / TRL where an equivalent exists. Unknown keys are rejected
(``extra="forbid"``); `tuneforge.config.load` turns pydantic's errors into one-line messages
with a did-you-mean. ``method`` and ``stage`` are tagged unions over their registries: each
method or stage module defines its own ``Config`` model selected by ``name``.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from tuneforge.config.deprecations import CONFIG_VERSION
from tuneforge.config.train import ScaleConfig, Section, SpeedConfig, TrainConfig
from tuneforge.eval.metrics import Match
from tuneforge.eval.tasks import TASKS
from tuneforge.methods import METHODS
from tuneforge.stages import STAGES


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
    trust_remote_code: bool = Field(
        False,
        description="Run the model's own Python code (from its folder or the hub). Takes effect only when "
        "the command asks for it too (--trust-remote-code, or this key as a key=value override): a "
        "config file or run folder alone never runs code.",
    )
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
    text_unit: Literal["paragraph", "line", "file"] = Field(
        "paragraph",
        description="How .txt files split into documents: 'paragraph' (blank lines between documents; "
        "the default for a path), 'line' (each non-empty line is one, as LLaMA-Factory reads them; the "
        "default for dataset-registry entries) or 'file' (the whole file is one). Only for sources "
        "with .txt files.",
    )

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
        "(chatml, chatml_tools, llama3, qwen, default).",
    )
    max_length: int = Field(1024, gt=0, description="Tokens per sample after rendering.")
    train_on_prompt: bool = Field(False, description="Train on every token, prompts included.")
    mask_history: bool = Field(False, description="Train only the last assistant turn.")
    prompt_truncation: Literal["keep_end", "drop_turns", "drop"] = Field(
        "keep_end",
        description="What happens to a sample whose prompt (everything before its first trained token) "
        "leaves no room for the answer within max_length: it is shortened to max_length minus the answer "
        "(at most half of max_length for the answer). 'keep_end': drop the oldest turns (a system message "
        "is kept), then cut the start of the first user message left; 'drop_turns': only drop the oldest "
        "turns, and drop the sample if it is still too long; 'drop': drop the sample. The assistant header "
        "is always kept. For sft, dpo, orpo, simpo, rm and kto; prompt-only data (grpo, ppo) drops a "
        "prompt longer than max_length.",
    )
    default_system: str | None = Field(
        None,
        description="The system prompt used when a conversation has none, written into the run's chat "
        "template (so chat, serve and every export carry it); '' for none, replacing the template's own "
        "default (SmolLM2's and Qwen's name their makers). Unset: the template's own.",
    )
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


class OutputConfig(Section):
    dir: str = Field("runs/latest", description="Run folder: checkpoints, adapter or model, logs, manifest.")
    overwrite: bool = Field(
        False, description="Allow training into a folder that already holds a finished run."
    )
    plot_loss: bool = Field(True, description="Write loss.png at the end.")


class CompareConfig(Section):
    prompts: str | None = Field(
        None,
        description="JSONL of {prompt, answer?, group?}: answered by the base model before training and "
        "by the trained model after, printed side by side and saved as compare.md (answers are scored, "
        "per group too; answers right before and wrong after are listed as regressions).",
    )
    max_new_tokens: int = Field(64, gt=0, description="Tokens generated per answer.")
    system: str | None = Field(None, description="System message put before each prompt.")
    metric: Match = Field(
        "auto",
        description="How an answer is scored: auto (the last number for a numeric answer, else contains), "
        "exact_match, contains, json_match (the whole reply is JSON equal to the answer's), regex.",
    )
    regex: str | None = Field(
        None, description="metric: regex: its first match (first group) must exact_match the answer."
    )

    @model_validator(mode="after")
    def _regex_given(self):
        if self.metric == "regex" and not self.regex:
            raise ValueError(
                "compare.metric regex needs compare.regex: PATTERN (its first group is the answer)"
            )
        return self


class EvalConfig(Section):
    tasks: list[TaskConfigUnion] = Field(
        default_factory=list,
        description="Eval tasks run at every evaluation (train.eval_steps) and at the end; their numbers "
        "go to the log, TensorBoard (eval/<label>/<metric>) and manifest.json (see docs/eval.md).",
    )


class Config(Section):
    config_version: int = Field(
        CONFIG_VERSION,
        ge=1,
        description="The config layout this file follows; run folders record it so renamed keys can be "
        "mapped when an old run is loaded (tuneforge.config.deprecations).",
    )
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
    speed: SpeedConfig = Field(default_factory=SpeedConfig)
    scale: ScaleConfig = Field(default_factory=ScaleConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    compare: CompareConfig = Field(default_factory=CompareConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
