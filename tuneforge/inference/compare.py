"""Before/after answers: the base model answers `compare.prompts` before training, the trained
model after; both are printed side by side and saved as compare.json and compare.md. Where a
prompt has an `answer`, each side is scored by `compare.metric` and the accuracy shown;
rows with a `group` ("name", "maker", "knowledge" ...) are also scored per group, and a scored
answer that was right before training and wrong after is listed as a regression, so a gain in what
was trained is shown next to what it cost."""

from __future__ import annotations

import json
from pathlib import Path

from tuneforge.config.schema import CompareConfig
from tuneforge.errors import DataError
from tuneforge.eval.metrics import matcher, score
from tuneforge.inference.generate import generate_answers


def read_prompts(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"compare.prompts: {path} does not exist")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path} line {n}: invalid JSON ({e.msg}); fix or delete that line") from None
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
            raise DataError(f'{path} line {n}: expected {{"prompt": "...", "answer": "..."}}')
        rows.append(row)
    if not rows:
        raise DataError(f"compare.prompts: {path} has no prompts")
    return rows


def answer_all(
    model, tokenizer, rows: list[dict], cfg: CompareConfig, chat_template, stop_tokens
) -> list[str]:
    convs = []
    for row in rows:
        msgs = [{"role": "system", "content": cfg.system}] if cfg.system else []
        convs.append([*msgs, {"role": "user", "content": row["prompt"]}])
    return generate_answers(
        model,
        tokenizer,
        convs,
        chat_template=chat_template,
        stop_tokens=stop_tokens,
        max_new_tokens=cfg.max_new_tokens,
    )


def report(
    rows: list[dict], before: list[str], after: list[str], run_dir: Path, cfg: CompareConfig | None = None
) -> dict:
    """Print the comparison, write compare.json + compare.md, return the summary numbers; answers
    are scored by ``cfg.metric`` (auto: `tuneforge.eval.metrics.score`)."""
    ok = matcher(cfg.metric, cfg.regex) if cfg else score
    scored = [r for r in rows if r.get("answer") is not None]
    summary: dict = {"prompts": len(rows)}
    items = []
    for row, b, a in zip(rows, before, after, strict=True):
        item = {"prompt": row["prompt"], "before": b, "after": a}
        if row.get("answer") is not None:
            item.update(
                answer=str(row["answer"]),
                before_ok=ok(b, str(row["answer"])),
                after_ok=ok(a, str(row["answer"])),
            )
        items.append(item)
    if scored:
        summary["before_accuracy"] = sum(i["before_ok"] for i in items if "answer" in i) / len(scored)
        summary["after_accuracy"] = sum(i["after_ok"] for i in items if "answer" in i) / len(scored)
        groups = _groups(rows, items)
        if groups:
            summary["groups"] = groups
        summary["regressed"] = [i["prompt"] for i in items if i.get("before_ok") and not i["after_ok"]]
    (run_dir / "compare.json").write_text(
        json.dumps({"summary": summary, "items": items}, ensure_ascii=False, indent=2)
    )
    lines = ["# Before and after training", ""]
    for item in items:
        mark = lambda ok: "" if ok is None else (" ✓" if ok else " ✗")  # noqa: E731
        lines += [
            f"**Q:** {item['prompt']}",
            "",
            f"- before{mark(item.get('before_ok'))}: {item['before']}",
            f"- after{mark(item.get('after_ok'))}: {item['after']}",
            "",
        ]
    score_lines = _score_lines(summary, items) if scored else []
    (run_dir / "compare.md").write_text("\n".join(lines + score_lines) + "\n", encoding="utf-8")
    print("\n".join(_console(items) + score_lines))
    return summary


def _groups(rows: list[dict], items: list[dict]) -> dict[str, dict]:
    """Per `group` of the scored rows: how many, and how many were right before and after."""
    out: dict[str, dict] = {}
    for row, item in zip(rows, items, strict=True):
        if "answer" in item and row.get("group") is not None:
            g = out.setdefault(str(row["group"]), {"prompts": 0, "before": 0, "after": 0})
            g["prompts"] += 1
            g["before"] += item["before_ok"]
            g["after"] += item["after_ok"]
    return out


def _score_lines(summary: dict, items: list[dict]) -> list[str]:
    n = sum("answer" in i for i in items)
    out = [
        f"accuracy on {n} scored prompts: before {summary['before_accuracy']:.1%} "
        f"-> after {summary['after_accuracy']:.1%}"
    ]
    for name, g in summary.get("groups", {}).items():
        out.append(f"  {name}: before {g['before']}/{g['prompts']} -> after {g['after']}/{g['prompts']}")
    for item in items:
        if item.get("before_ok") and not item["after_ok"]:
            out.append(f"  regressed: {item['prompt']} -> {_short(item['after'], 120)}")
    return out


def _console(items: list[dict]) -> list[str]:
    out = ["", "=== answers before and after training ==="]
    for item in items:
        out += [
            f"Q: {item['prompt']}",
            f"  before: {_short(item['before'])}",
            f"  after:  {_short(item['after'])}",
        ]
    return out


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
