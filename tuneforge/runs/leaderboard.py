"""The report of a candidate run (sweep or bench): a Markdown table, the rows as JSON and a PNG of
bar charts, all written next to the candidates' run folders. Rows come from
`tuneforge.runs.candidates.run_candidates`; a missing value shows as '-'."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tuneforge.runs.candidates import metric_value


@dataclass(frozen=True)
class Column:
    header: str
    key: str  # a row key or a manifest metric name (see candidates.metric_value)
    fmt: Callable[[object], str] = str


def number(digits: int) -> Callable[[object], str]:
    return lambda v: f"{v:.{digits}f}"


def percent(v) -> str:
    return f"{100 * v:.2f}%"


def yes_no(v) -> str:
    return "yes" if v else "no"


def cell(row: dict, col: Column) -> str:
    value = row.get(col.key) if col.key in row else metric_value(row, col.key)
    if value is None:
        return "-"
    return col.fmt(value)


def markdown(rows: list[dict], columns: list[Column]) -> str:
    lines = [
        "| " + " | ".join(c.header for c in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(r, c) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def lower_is_better(metric: str) -> bool:
    """Losses, perplexities, time, memory and size go down; accuracies and scores go up."""
    words = ("loss", "perplexity", "ppl", "wall", "rss", "mb", "_s", "runtime", "size", "error")
    return any(w in metric.lower() for w in words) and "per_s" not in metric.lower()


def rank(rows: list[dict], metric: str, minimize: bool) -> list[dict]:
    """Rows with a value for ``metric`` best first, then those without (failed ones last)."""
    scored = [r for r in rows if metric_value(r, metric) is not None]
    rest = [r for r in rows if metric_value(r, metric) is None]
    scored.sort(key=lambda r: metric_value(r, metric), reverse=not minimize)
    return scored + rest


def write_json(rows: list[dict], path: Path, **extra) -> Path:
    path.write_text(json.dumps({**extra, "rows": rows}, indent=2, ensure_ascii=False, default=str))
    return path


def plot_bars(
    rows: list[dict], columns: list[Column], path: Path, title: str, best: str | None = None
) -> Path:
    """One horizontal bar chart per column that has numbers, candidates on the y axis."""
    from tuneforge.extras import available

    if not available("the leaderboard plot", "matplotlib"):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [c for c in columns if any(_num(r, c) is not None for r in rows)]
    if not panels:
        return path
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    height = max(2.0, 0.35 * len(rows) + 1.2)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, height * nrows), dpi=100, squeeze=False)
    names = [r["name"] for r in rows]
    for ax, col in zip(axes.flat, panels, strict=False):
        values = [_num(r, col) for r in rows]
        colors = ["tab:green" if n == best else "tab:blue" for n in names]
        ax.barh(names, [v if v is not None else 0 for v in values], color=colors)
        for y, v in enumerate(values):
            if v is None:
                ax.text(0, y, " n/a", va="center", fontsize=8, color="gray")
        ax.set_title(col.header + (" (%)" if col.fmt is percent else ""), fontsize=10)
        ax.invert_yaxis()
        ax.tick_params(labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _num(row: dict, col: Column) -> float | None:
    value = row.get(col.key) if col.key in row else metric_value(row, col.key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return 100 * value if col.fmt is percent else value
