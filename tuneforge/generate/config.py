"""The recipe file of `tuneforge data generate RECIPE.yaml`: one typed YAML, like a train config
(unknown keys rejected with a did-you-mean, `key=value` overrides), nested by concern: ``teacher``
(who writes the data), ``recipe`` (how: a tagged union over `tuneforge.generate.recipes`),
``filters``, ``dedup`` and ``output``."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from tuneforge.generate.recipes import RECIPES

DEFAULT_REFUSALS = [
    r"^\s*(I'm sorry|I am sorry|Sorry), (but )?I (can't|cannot|am unable|won't)",
    r"\bAs an AI( language model)?, I (can't|cannot|don't|do not)",
    r"^\s*I (can't|cannot) (help|assist) with",
]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TeacherConfig(Section):
    model: str = Field(
        description="With base_url: the endpoint's model name. Without: a local model that tuneforge loads "
        "(an HF folder, a .gguf file, package:PKG/FILE.gguf, or a run folder)."
    )
    base_url: str | None = Field(
        None,
        description="An OpenAI-compatible /v1 URL (vLLM, llama.cpp's server, Ollama, a hosted API, "
        "`tuneforge serve`); none: the local `model`.",
    )
    api_key_env: str | None = Field(
        None, description="The environment variable holding the endpoint's key (a name ending in _API_KEY)."
    )
    concurrency: int = Field(4, ge=1, le=256, description="Endpoint calls in flight at once.")
    timeout_s: float = Field(120.0, gt=0, description="Seconds one endpoint call may take.")
    retries: int = Field(
        4,
        ge=0,
        description="Further tries of a failed call (429, 5xx, timeout, unreadable reply), each after "
        "backoff_s x 2^try seconds (or the server's Retry-After).",
    )
    backoff_s: float = Field(1.0, ge=0, description="The first wait before a retry.")
    temperature: float = Field(0.7, ge=0, description="Sampling temperature (0: greedy).")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    max_tokens: int = Field(512, gt=0, description="The most tokens one reply may have.")
    seed: int = Field(
        0, description="Base seed: call i of a step asks with seed + i, so a rerun asks the same."
    )
    stop: list[str] = Field(
        default_factory=list,
        max_length=4,
        description="Up to 4 strings that end a reply before them (OpenAI's `stop`), e.g. ['\\n\\n'].",
    )
    batch_size: int = Field(8, gt=0, description="Local model: prompts per generate call.")


RecipeUnion = Annotated[Union[tuple(m.Config for m in RECIPES.modules())], Field(discriminator="name")]  # noqa: UP007


class JudgeConfig(Section):
    rubric: str = Field(
        "Is the answer correct, helpful and a direct response to the request?",
        description="What the judge scores each sample by.",
    )
    scale: Literal["1-5", "pass_fail"] = Field("1-5", description="A score of 1-5, or PASS / FAIL.")
    threshold: float = Field(4, description="The lowest score kept (1-5); pass_fail keeps PASS.")
    teacher: TeacherConfig | None = Field(None, description="The judge model; default: the teacher.")
    calibration: str | None = Field(
        None,
        description="A human-rated JSON / JSONL file (prompt, answer, score): the judge's agreement with "
        "it is reported before it filters.",
    )
    min_agreement: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Stop before filtering when the judge agrees with the people less often.",
    )


class RewardModelFilter(Section):
    model: str = Field(
        description="A reward model: a folder of one (sequence classification, one label) or the run "
        "folder of a `tuneforge train` run of stage rm."
    )
    threshold: float = Field(
        description="The lowest score kept (the model's own scale: look at a few first)."
    )
    batch_size: int = Field(8, gt=0, description="Samples scored per forward pass.")


class FiltersConfig(Section):
    min_chars: int = Field(1, ge=0, description="Drop samples whose answer is shorter.")
    max_chars: int | None = Field(None, gt=0, description="Drop samples whose answer is longer.")
    min_turns: int = Field(
        2, ge=1, description="Drop conversations with fewer messages (system not counted)."
    )
    max_turns: int | None = Field(None, ge=1, description="Drop conversations with more messages.")
    refusals: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REFUSALS),
        description="Regular expressions (case-insensitive) of refusals: an answer matching one is dropped.",
    )
    answer_json: bool = Field(False, description="Drop samples whose answer is not valid JSON.")
    answer_schema: dict | None = Field(
        None, description="A JSON schema every answer must satisfy (implies answer_json)."
    )
    verify: str | None = Field(
        None,
        description="FILE.py:FUNCTION called with (prompt, answer) -> bool: programmatic verification "
        "(this runs that file's code).",
    )
    reward_model: RewardModelFilter | None = Field(
        None, description="Drop samples a reward model scores below a threshold (after the checks above)."
    )
    judge: JudgeConfig | None = Field(None, description="An LLM judge with a rubric and a threshold.")


class DedupConfig(Section):
    exact: bool = Field(
        True, description="Drop exact duplicates (after normalising case, punctuation, spaces)."
    )
    near: Literal["minhash", "rouge_l", "none"] = Field(
        "minhash", description="Near-duplicates: MinHash over word 3-grams, or ROUGE-L as Self-Instruct does."
    )
    threshold: float = Field(0.7, gt=0, le=1, description="Similarity at which a later sample is dropped.")
    decontaminate: list[str] = Field(
        default_factory=list,
        description="Eval files (JSONL/JSON rows with prompt/question/instruction) whose items must not "
        "appear in the generated data: a sample sharing their word n-grams is dropped.",
    )
    ngram: int = Field(8, ge=1, description="Word n-gram length of the decontamination check.")
    overlap: float = Field(
        0.5, gt=0, le=1, description="Share of an eval item's n-grams that marks a sample."
    )


class OutputConfig(Section):
    path: str = Field(description="The JSONL file the kept samples are written to.")
    format: Literal["alpaca", "sharegpt", "openai"] = Field(
        "openai", description="The row format (a preference recipe writes prompt / chosen / rejected)."
    )
    name: str | None = Field(
        None, description="The dataset registry entry's name (default: the file's stem)."
    )
    registry: str | None = Field(
        None,
        description="A dataset registry file (dataset_info.json) to add the entry to, so a train config "
        "names it (data.datasets: [{name: ...}]).",
    )
    overwrite: bool = Field(False, description="Replace an existing output file.")


class GenerateConfig(Section):
    teacher: TeacherConfig
    recipe: RecipeUnion
    filters: FiltersConfig = Field(default_factory=FiltersConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    output: OutputConfig
    cache_dir: str | None = Field(
        None,
        description="Where teacher calls are kept, keyed by their content (default: $TUNEFORGE_CACHE/generate): "
        "a rerun or a resumed run asks nothing twice.",
    )
