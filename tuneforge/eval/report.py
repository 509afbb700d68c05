"""The outputs of `tuneforge eval`: eval.json (every number, per-row samples), eval.md (before and
after side by side, per-subject tables) and PNG plots (per-task bars, per-subject accuracy)."""

from __future__ import annotations

import json
from pathlib import Path

SAMPLES_IN_MD = 10


def _fmt(value) -> str:
    return "" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value))


def markdown(summary: dict) -> str:
    sides = summary["sides"]
    lines = [f"# Evaluation of `{summary['model']}`", ""]
    if sides == ["before", "after"]:
        lines += [
            "`before` is the base model, `after` the trained run; both use the run's chat template.",
            "",
        ]
    head = ["task", "metric", *sides] + (["change"] if len(sides) == 2 else [])
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, task in summary["tasks"].items():
        names = list(next(iter(task["sides"].values()))["metrics"]) if task["sides"] else []
        for metric in names:
            vals = [task["sides"].get(s, {}).get("metrics", {}).get(metric) for s in sides]
            row = [key, metric, *map(_fmt, vals)]
            if len(sides) == 2 and None not in vals:
                row.append(f"{vals[1] - vals[0]:+.4g}")
            lines.append("| " + " | ".join(row) + " |")
        for metric, value in task.get("combined", {}).items():
            lines.append(f"| {key} | {metric} (after vs before) | {_fmt(value)} |" + " |" * (len(head) - 3))
    counts = [
        f"- {key} ({side}): " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in res["counts"].items())
        for key, task in summary["tasks"].items()
        for side, res in task["sides"].items()
        if res.get("counts")
    ]
    if counts:
        lines += ["", "Counted:", "", *counts]
    for key, task in summary["tasks"].items():
        subjects = sorted({s for side in task["sides"].values() for s in side.get("subjects", {})})
        if subjects:
            lines += ["", f"## {key}: accuracy per subject", "", "| subject | " + " | ".join(sides) + " |"]
            lines.append("|" + "---|" * (len(sides) + 1))
            for subj in subjects:
                vals = [_fmt(task["sides"].get(s, {}).get("subjects", {}).get(subj)) for s in sides]
                lines.append(f"| {subj} | " + " | ".join(vals) + " |")
        rows = _answer_rows(task, sides)
        if rows:
            lines += ["", f"## {key}: first answers", "", *rows]
    lines += [
        "",
        "Every number and every answer: eval.json. Plots: eval_tasks.png, eval_subjects.png (when any).",
    ]
    return "\n".join(lines) + "\n"


def _answer_rows(task: dict, sides: list[str]) -> list[str]:
    first = task["sides"].get(sides[0], {}).get("samples", [])
    if not first or "prompt" not in first[0]:
        return []
    out = []
    for i, sample in enumerate(first[:SAMPLES_IN_MD]):
        out.append(
            f"**Q:** {sample['prompt']}"
            + (f"  (reference: {sample['answer']})" if sample.get("answer") else "")
        )
        for side in sides:
            s = task["sides"][side]["samples"][i]
            pred = " ".join(str(s.get("prediction", "")).split())
            out.append(f"- {side}: {pred[:300]}")
        out.append("")
    return out


def plot(summary: dict, out_dir: Path) -> list[Path]:
    from tuneforge.extras import available

    if not available("the eval plots", "matplotlib"):
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sides = summary["sides"]
    written = []
    bars = [
        (f"{key}\n{m}", [task["sides"].get(s, {}).get("metrics", {}).get(m) or 0.0 for s in sides])
        for key, task in summary["tasks"].items()
        for m in (next(iter(task["sides"].values()))["metrics"] if task["sides"] else {})
        if m not in ("loss", "perplexity", "bleu")  # other scales; they are in the tables
    ]
    if bars:
        written.append(_bar_chart(plt, bars, sides, "score (0-1)", out_dir / "eval_tasks.png"))
    subj = [
        (f"{key}: {subject}", [task["sides"].get(s, {}).get("subjects", {}).get(subject, 0.0) for s in sides])
        for key, task in summary["tasks"].items()
        for subject in sorted({x for side in task["sides"].values() for x in side.get("subjects", {})})
    ]
    if subj:
        written.append(
            _bar_chart(plt, subj, sides, "accuracy", out_dir / "eval_subjects.png", horizontal=True)
        )
    return written


def _bar_chart(plt, groups, sides, ylabel, path: Path, horizontal: bool = False) -> Path:
    n, width = len(groups), 0.8 / len(sides)
    size = (8, max(3, 0.35 * n * len(sides) + 1)) if horizontal else (max(6, 1.2 * n + 2), 4.5)
    fig, ax = plt.subplots(figsize=size, dpi=100)
    for j, side in enumerate(sides):
        pos = [i + j * width for i in range(n)]
        vals = [g[1][j] for g in groups]
        (ax.barh if horizontal else ax.bar)(pos, vals, width, label=side)
    ticks = [i + width * (len(sides) - 1) / 2 for i in range(n)]
    if horizontal:
        ax.set_yticks(ticks, [g[0] for g in groups], fontsize=8)
        ax.set_xlabel(ylabel)
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
    else:
        ax.set_xticks(ticks, [g[0] for g in groups], fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 1)
    ax.legend()
    ax.grid(alpha=0.3, axis="x" if horizontal else "y")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_reports(summary: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "eval.json").write_text(
        json.dumps(summary, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
    )
    (out_dir / "eval.md").write_text(markdown(summary), encoding="utf-8")
    plot(summary, out_dir)
