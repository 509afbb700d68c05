"""`generate`: greedy answers to prompts with reference answers, generated in batches with the
target's chat template and scored with `tuneforge.eval.metrics` (exact_match with number extraction,
contains, regex, BLEU, ROUGE)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tuneforge.eval.tasks._base import TaskConfig, TaskResult

DESCRIPTION = "Answers to prompts scored against references (exact_match, contains, regex, bleu, rouge)."

Metric = Literal["exact_match", "contains", "regex", "bleu", "rouge"]


class Config(TaskConfig):
    name: Literal["generate"] = "generate"
    path: str = Field(description="JSON or JSONL file of rows with a prompt and a reference answer.")
    prompt_field: str = Field("prompt", description="Column holding the prompt.")
    answer_field: str = Field("answer", description="Column holding the reference answer.")
    metrics: list[Metric] = Field(
        default_factory=lambda: ["exact_match"],
        description="exact_match (numbers: the last number in the reply), contains, regex, "
        "bleu (corpus, 0-100), rouge (rouge1/rouge2/rougeL F, 0-1).",
    )
    regex: str | None = Field(
        None, description="Pattern for the regex metric; its first group is the extracted answer."
    )
    system: str | None = Field(None, description="System message put before each prompt.")
    max_new_tokens: int = Field(64, gt=0, description="Tokens generated per answer.")

    @model_validator(mode="after")
    def _regex_given(self) -> Config:
        if "regex" in self.metrics and not self.regex:
            raise ValueError(
                "generate: the regex metric needs `regex: PATTERN` (its first group is the answer)"
            )
        return self


def read_rows(path: str, fields: tuple[str, ...], what: str) -> list[dict]:
    """Rows of a JSON list or JSONL file, each checked to carry `fields` (a one-line error otherwise)."""
    import json
    from pathlib import Path

    from tuneforge.errors import DataError

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{what}: {p} does not exist")
    text = p.read_text(encoding="utf-8")
    try:
        rows = json.loads(text) if text.lstrip().startswith("[") else None
    except json.JSONDecodeError as e:
        raise DataError(f"{p}: invalid JSON ({e.msg} at line {e.lineno}); fix the file") from None
    if rows is None:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DataError(
                        f"{p} line {n}: invalid JSON ({e.msg}); fix or delete that line"
                    ) from None
    for n, row in enumerate(rows, 1):
        missing = [f for f in fields if not isinstance(row, dict) or row.get(f) is None]
        if missing:
            raise DataError(
                f"{p} row {n}: missing {', '.join(missing)}; set the task's *_field keys to your column names"
            )
    if not rows:
        raise DataError(f"{what}: {p} has no rows")
    return rows


def answer(
    target, prompts: list[str], system: str | None, max_new_tokens: int, batch_size: int, desc: str
) -> list[str]:
    """Greedy answers with the target's template, batch by batch under a progress bar."""
    from tqdm.auto import tqdm

    from tuneforge.inference.generate import generate_answers

    convs = [
        ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": p}]
        for p in prompts
    ]
    out: list[str] = []
    for start in tqdm(range(0, len(convs), batch_size), desc=desc, unit="batch"):
        out += generate_answers(
            target.model,
            target.tokenizer,
            convs[start : start + batch_size],
            chat_template=target.chat_template,
            stop_tokens=target.stop_tokens,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
        )
    return out


def score_all(
    cfg: Config, predictions: list[str], references: list[str]
) -> tuple[dict[str, float], list[dict]]:
    """Metric name -> value over all rows, and per-row hits for the report."""
    from tuneforge.eval import metrics as m

    n = len(predictions)
    out: dict[str, float] = {}
    hits: list[dict] = [{} for _ in predictions]
    checks = {
        "exact_match": m.exact_match,
        "contains": m.contains,
        "regex": lambda p, a: m.regex_match(p, a, cfg.regex or ""),
    }
    for name in cfg.metrics:
        if name in checks:
            ok = [checks[name](p, a) for p, a in zip(predictions, references, strict=True)]
            out[name] = sum(ok) / n
            for h, v in zip(hits, ok, strict=True):
                h[name] = v
        elif name == "bleu":
            out["bleu"] = m.bleu(predictions, references)
        else:
            out.update(m.rouge(predictions, references))
    return out, hits


def run(cfg: Config, target) -> TaskResult:
    rows = read_rows(cfg.path, (cfg.prompt_field, cfg.answer_field), f"eval task {cfg.key!r}")
    rows = rows[: cfg.limit] if cfg.limit else rows
    prompts = [str(r[cfg.prompt_field]) for r in rows]
    refs = [str(r[cfg.answer_field]) for r in rows]
    preds = answer(
        target, prompts, cfg.system, cfg.max_new_tokens, cfg.batch_size, f"{cfg.key} ({target.side})"
    )
    metrics, hits = score_all(cfg, preds, refs)
    samples = [
        {"prompt": p, "answer": a, "prediction": y, **h}
        for p, a, y, h in zip(prompts, refs, preds, hits, strict=True)
    ]
    return TaskResult(metrics=metrics, samples=samples, counts={"rows": len(rows)})
