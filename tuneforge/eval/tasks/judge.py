"""`judge`: an LLM judge (an OpenAI-compatible endpoint or a local model, see tuneforge.inference.judge)
grades answers. `rubric` mode scores each side's answers 1-10 against a rubric (and the reference,
when rows have one); `pairwise` mode shows the judge the base model's and the trained model's answers
to the same prompt, in both orders to cancel position bias, and reports the trained model's win rate.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from tuneforge.eval.tasks._base import TaskConfig, TaskResult

DESCRIPTION = "LLM judge: rubric scores, or before-vs-after pairwise win rate (endpoint or local model)."

DEFAULT_RUBRIC = "Is the answer correct, relevant and helpful? Is it clear and concise?"
RUBRIC_PROMPT = """You are grading an AI assistant's answer to a user's question.
Rubric: {rubric}

[Question]
{prompt}
{reference}[Answer]
{answer}

Grade the answer from 1 (worst) to 10 (best) by the rubric. Give a one-sentence reason, then end with a line of the form "Score: N"."""
PAIRWISE_PROMPT = """You are comparing two AI assistants' answers to a user's question.
Criteria: {rubric}

[Question]
{prompt}
{reference}[Answer of assistant A]
{a}

[Answer of assistant B]
{b}

Which answer is better by the criteria? Give a one-sentence reason, then end with "[[A]]" if A is better, "[[B]]" if B is better, or "[[C]]" for a tie."""
_SCORE_RE = re.compile(r"score\s*[:=]?\s*\**\s*(10|[1-9])(?:\.\d+)?\b", re.IGNORECASE)
_VERDICT_RE = re.compile(r"\[\[([ABC])\]\]")


class Config(TaskConfig):
    name: Literal["judge"] = "judge"
    path: str = Field(description="JSON or JSONL file of prompts (and optional reference answers).")
    prompt_field: str = Field("prompt", description="Column holding the prompt.")
    reference_field: str = Field(
        "answer", description="Column holding a reference answer (optional per row)."
    )
    mode: Literal["rubric", "pairwise"] = Field(
        "rubric", description="rubric: score each answer 1-10; pairwise: base vs trained answers (runs only)."
    )
    rubric: str = Field(DEFAULT_RUBRIC, description="What the judge grades by.")
    endpoint: str | None = Field(
        None,
        description="Base URL of an OpenAI-compatible API (e.g. http://localhost:8000/v1); none = a local judge.",
    )
    judge_model: str = Field(
        description="Model name at the endpoint, or a local model (HF folder, .gguf, package:...) when no endpoint."
    )
    api_key_env: str | None = Field(
        "OPENAI_API_KEY",
        description="Environment variable holding the API key: a name ending in _API_KEY, or one listed "
        "(comma-separated) in $TUNEFORGE_ALLOWED_KEY_ENV; no other variable is read.",
    )
    system: str | None = Field(
        None, description="System message put before each prompt for the evaluated model."
    )
    max_new_tokens: int = Field(128, gt=0, description="Tokens the evaluated model generates per answer.")
    judge_max_tokens: int = Field(256, gt=0, description="Tokens the judge may reply with.")
    timeout: float = Field(120.0, gt=0, description="Seconds to wait for one endpoint reply.")

    @model_validator(mode="after")
    def _endpoint_url(self) -> Config:
        if self.endpoint is not None and not self.endpoint.startswith(("http://", "https://")):
            raise ValueError(
                f"judge: endpoint {self.endpoint!r} must be an http(s) URL such as http://localhost:8000/v1"
            )
        return self


def parse_score(reply: str) -> int | None:
    """The 1-10 grade in a judge reply ('... Score: 8'), the last one if several; None if absent."""
    found = _SCORE_RE.findall(reply)
    return int(found[-1]) if found else None


def parse_verdict(reply: str) -> str | None:
    """'A', 'B' or 'C' (tie) from a pairwise reply ('... [[B]]'); None if absent."""
    found = _VERDICT_RE.findall(reply)
    return found[-1] if found else None


def _reference(row: dict, cfg: Config) -> str:
    ref = row.get(cfg.reference_field)
    return f"[Reference answer]\n{ref}\n\n" if ref not in (None, "") else ""


def _check_key(cfg: Config) -> None:
    """A ConfigError when the endpoint's ``api_key_env`` is not a variable meant as an API key."""
    from tuneforge.inference import judge

    if cfg.endpoint is not None and cfg.api_key_env:
        judge.check_key_env(cfg.api_key_env, _key_where(cfg))


def _key_where(cfg: Config) -> str:
    return f"eval task {cfg.key!r}: api_key_env"


def _ask(cfg: Config, prompts: list[str]) -> list[str]:
    """The judge's replies (`tuneforge.inference.judge`: ``endpoint`` + ``judge_model``, or the local ``judge_model``)."""
    from tuneforge.inference import judge

    return judge.ask(
        prompts,
        endpoint=cfg.endpoint,
        model=cfg.judge_model,
        api_key_env=cfg.api_key_env,
        where=_key_where(cfg),
        max_tokens=cfg.judge_max_tokens,
        timeout=cfg.timeout,
        batch_size=cfg.batch_size,
        progress=f"{cfg.key}: judging",
    )


def run(cfg: Config, target) -> TaskResult:
    from tuneforge.eval.tasks.generate import answer, read_rows

    _check_key(cfg)  # before the answers are generated
    rows = read_rows(cfg.path, (cfg.prompt_field,), f"eval task {cfg.key!r}")
    rows = rows[: cfg.limit] if cfg.limit else rows
    prompts = [str(r[cfg.prompt_field]) for r in rows]
    preds = answer(
        target, prompts, cfg.system, cfg.max_new_tokens, cfg.batch_size, f"{cfg.key} ({target.side})"
    )
    samples = [{"prompt": p, "prediction": y, "row": r} for p, y, r in zip(prompts, preds, rows, strict=True)]
    if cfg.mode == "pairwise":  # judged in `combine`, once both sides have answered
        return TaskResult(metrics={}, samples=samples, counts={"rows": len(rows)})
    asks = [
        RUBRIC_PROMPT.format(rubric=cfg.rubric, prompt=p, reference=_reference(r, cfg), answer=y)
        for p, y, r in zip(prompts, preds, rows, strict=True)
    ]
    replies = _ask(cfg, asks)
    scores = [parse_score(x) for x in replies]
    for s, reply, score in zip(samples, replies, scores, strict=True):
        s.update(judge_reply=reply, score=score)
    parsed = [s for s in scores if s is not None]
    metrics = {
        "score": sum(parsed) / len(parsed) if parsed else float("nan"),
        "parsed": len(parsed) / len(scores),
    }
    return TaskResult(
        metrics=metrics, samples=samples, counts={"rows": len(rows), "unparsed": len(scores) - len(parsed)}
    )


def combine(cfg: Config, results: dict) -> dict[str, float]:
    """Pairwise mode: the trained model's answers against the base model's, each prompt judged with
    the trained answer as A and as B. A win counts 1, a tie 0.5; replies without a verdict are left out."""
    if cfg.mode != "pairwise":
        return {}

    before, after = results["before"].samples, results["after"].samples
    asks, after_is = [], []
    for b, a in zip(before, after, strict=True):
        ref = _reference(a["row"], cfg)
        asks.append(
            PAIRWISE_PROMPT.format(
                rubric=cfg.rubric, prompt=a["prompt"], reference=ref, a=a["prediction"], b=b["prediction"]
            )
        )
        after_is.append("A")
        asks.append(
            PAIRWISE_PROMPT.format(
                rubric=cfg.rubric, prompt=a["prompt"], reference=ref, a=b["prediction"], b=a["prediction"]
            )
        )
        after_is.append("B")
    verdicts = [parse_verdict(x) for x in _ask(cfg, asks)]
    points = [
        (1.0 if v == side else 0.5 if v == "C" else 0.0)
        for v, side in zip(verdicts, after_is, strict=True)
        if v
    ]
    ties = sum(v == "C" for v in verdicts if v)
    if not points:
        return {"parsed": 0.0}
    return {
        "after_win_rate": sum(points) / len(points),
        "tie_rate": ties / len(points),
        "parsed": len(points) / len(verdicts),
    }
