"""`tuneforge sweep`: a cartesian grid of config overrides trained one after another by the shared
candidate runner (`tuneforge.runs.candidates`), then ranked by one metric into a leaderboard
(leaderboard.md, leaderboard.json, leaderboard.png in the sweep folder)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from tuneforge.config.raw import parse_override
from tuneforge.errors import ConfigError
from tuneforge.runs.candidates import Candidate, metric_value, run_candidates
from tuneforge.runs.leaderboard import (
    Column,
    lower_is_better,
    markdown,
    number,
    percent,
    plot_bars,
    rank,
    write_json,
)


def split_values(text: str) -> list[str]:
    """'1e-4,3e-4' -> ['1e-4', '3e-4']; commas inside [...] or {...} stay (list values)."""
    values, depth, current = [], 0, ""
    for ch in text:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            values.append(current)
            current = ""
        else:
            current += ch
    values.append(current)
    return [v.strip() for v in values]


def parse_grid(specs: list[str]) -> list[tuple[str, list[str]]]:
    """``key=v1,v2`` specs -> [(key, [v1, v2]), ...], each key once and each value non-empty."""
    grid: list[tuple[str, list[str]]] = []
    for spec in specs:
        if "=" not in spec:
            raise ConfigError(
                f"--grid {spec!r}: write key=value1,value2 (e.g. train.learning_rate=1e-4,3e-4)"
            )
        key, raw = spec.split("=", 1)
        key = key.strip()
        values = split_values(raw)
        if not key or not all(values):
            raise ConfigError(f"--grid {spec!r}: give a key and comma-separated values, none empty")
        if any(key == k for k, _ in grid):
            raise ConfigError(f"--grid names {key} twice; give all its values in one --grid {key}=a,b")
        parse_override(f"{key}={values[0]}")
        grid.append((key, values))
    if not grid:
        raise ConfigError("give at least one --grid key=value1,value2")
    return grid


def grid_candidates(config: Path, grid: list[tuple[str, list[str]]], fixed: list[str]) -> list[Candidate]:
    """One candidate per combination, named by its values (e.g. 'learning_rate=1e-4,r=8')."""
    candidates = []
    for combo in itertools.product(*(values for _, values in grid)):
        pairs = list(zip((k for k, _ in grid), combo, strict=True))
        name = ",".join(f"{k.rsplit('.', 1)[-1]}={_safe(v)}" for k, v in pairs)
        candidates.append(Candidate(name, config, [*fixed, *(f"{k}={v}" for k, v in pairs)]))
    names = [c.name for c in candidates]
    if len(set(names)) != len(names):  # two keys with the same last component
        for i, c in enumerate(candidates):
            c.name = f"{i:02d}-{c.name}"
    return candidates


def _safe(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", value).strip("_") or "x"


def default_metric(rows: list[dict]) -> str:
    for name in ("accuracy", "eval_loss", "train_loss"):
        if any(metric_value(r, name) is not None for r in rows):
            return name
    return "train_loss"


def sweep(
    config: Path,
    grid_specs: list[str],
    out: Path,
    fixed: list[str] = (),
    metric: str | None = None,
    minimize: bool | None = None,
    echo=print,
) -> dict:
    """Run the grid, write the leaderboard; return {rows, metric, best, files}."""
    grid = parse_grid(list(grid_specs))
    candidates = grid_candidates(config, grid, list(fixed))
    echo(f"sweep: {len(candidates)} candidates into {out}")
    rows = run_candidates(candidates, out, echo=echo)
    metric = metric or default_metric(rows)
    minimize = lower_is_better(metric) if minimize is None else minimize
    ranked = rank(rows, metric, minimize)
    best = ranked[0] if ranked and metric_value(ranked[0], metric) is not None else None
    columns = [
        Column("candidate", "name"),
        *(Column(k.rsplit(".", 1)[-1], f"value:{k}") for k, _ in grid),
        Column(metric, metric, _fmt),
        *[
            Column(h, k, f)
            for h, k, f in (
                ("train loss", "train_loss", number(4)),
                ("eval loss", "eval_loss", number(4)),
                ("accuracy", "accuracy", percent),
                ("trainable", "trainable_share", percent),
                ("peak RSS MB", "peak_rss_mb", number(0)),
                ("tokens/s", "tokens_per_s", number(0)),
                ("wall s", "wall_s", number(0)),
                ("status", "status", str),
            )
            if k != metric
        ],
    ]
    for row in rows:
        for k, v in zip((k for k, _ in grid), _values_of(row, grid), strict=True):
            row[f"value:{k}"] = v
    direction = "lower" if minimize else "higher"
    table = markdown(ranked, columns)
    files = {
        "md": out / "leaderboard.md",
        "json": write_json(ranked, out / "leaderboard.json", metric=metric, minimize=minimize),
        "png": plot_bars(
            ranked,
            [c for c in columns[len(grid) + 1 :] if c.key not in ("status",)],
            out / "leaderboard.png",
            f"sweep of {config.name}: sorted by {metric} ({direction} is better)",
            best=best["name"] if best else None,
        ),
    }
    text = f"# Sweep of {config}\n\nSorted by {metric} ({direction} is better).\n\n{table}\n"
    if best:
        text += "\n" + next_steps(best, metric) + "\n"
    files["md"].write_text(text, encoding="utf-8")
    echo("\n" + table)
    if best:
        echo("\n" + next_steps(best, metric))
    echo(f"\nleaderboard: {files['md']} {files['png']} {files['json']}")
    return {"rows": ranked, "metric": metric, "best": best, "files": files}


def next_steps(best: dict, metric: str) -> str:
    run = best["run_dir"]
    return (
        f"best: {best['name']} ({metric} = {_fmt(metric_value(best, metric))})\n"
        f"chat with it:  tuneforge chat {run}\n"
        f"export it:     tuneforge export {run} --merge {run}-merged"
    )


def _values_of(row: dict, grid) -> list[str]:
    given = dict(o.split("=", 1) for o in row.get("overrides", []))
    return [given.get(k, "-") for k, _ in grid]


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
