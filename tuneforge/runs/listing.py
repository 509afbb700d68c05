"""The run folders under a folder and where each stands: what `tuneforge ls runs` prints (and what a
page listing runs reads). Read only: a run folder is never changed here.

A run is *running* while its `.lock` names a live process, *finished* once its manifest is
written, and otherwise *stopped* (interrupted, killed or failed): it resumes from its newest
checkpoint with train.resume_from_checkpoint=auto. Its last loss and step come from
metrics.jsonl (`tuneforge.training.metrics_log`) while it trains and from the manifest after.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tuneforge.artifacts.folder import is_run_folder, running_holder
from tuneforge.training.metrics_log import read_metrics

DEPTH = 3  # run folders are looked for this many levels below the folder (sweeps nest candidates)


@dataclass
class RunInfo:
    path: Path
    state: str  # running, finished or stopped
    stage: str | None = None
    method: str | None = None
    base_model: str | None = None
    step: int | None = None
    max_steps: int | None = None
    last_loss: float | None = None
    checkpoints: int = 0
    eval: dict = field(default_factory=dict)  # the last eval_* numbers


def list_runs(root: str | Path) -> list[RunInfo]:
    """Every run folder under ``root`` (``root`` itself included), newest first."""
    root = Path(root)
    found = [d for d in _folders(root, DEPTH) if is_run_folder(d)]
    found.sort(key=lambda d: d.stat().st_mtime, reverse=True)
    return [run_info(d) for d in found]


def _folders(root: Path, depth: int):
    if not root.is_dir():
        return
    yield root
    if depth == 0:
        return
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.name.startswith((".", "checkpoint-")) and not child.is_symlink():
            yield from _folders(child, depth - 1)


def run_info(run_dir: Path) -> RunInfo:
    run_dir = Path(run_dir)
    manifest = _json(run_dir / "manifest.json")
    config = _yaml(run_dir / "config.yaml")
    state = "running" if running_holder(run_dir) else "finished" if manifest else "stopped"
    info = RunInfo(run_dir, state, checkpoints=len(list(run_dir.glob("checkpoint-*"))))
    info.stage = manifest.get("stage") or _get(config, "stage", "name")
    info.method = manifest.get("method") or _get(config, "method", "name")
    base = manifest.get("base_model")
    info.base_model = (
        base.get("name_or_path") if isinstance(base, dict) else _get(config, "model", "name_or_path")
    )
    info.max_steps = _get(config, "train", "max_steps")
    for record in read_metrics(run_dir):
        info.step = record.get("step", info.step)
        if isinstance(record.get("max_steps"), int) and record["max_steps"] > 0:
            info.max_steps = record["max_steps"]
        if isinstance(record.get("loss"), (int, float)):
            info.last_loss = float(record["loss"])
        info.eval.update(
            {k: v for k, v in record.items() if k.startswith("eval_") and isinstance(v, (int, float))}
        )
    metrics = manifest.get("metrics") or {}
    if isinstance(metrics.get("last_train_loss"), (int, float)):
        info.last_loss = float(metrics["last_train_loss"])
    info.step = metrics.get("global_step", info.step)
    return info


def format_runs(runs: list[RunInfo], root: Path) -> str:
    if not runs:
        return f"no run folders under {root}"
    rows = [("run", "state", "stage", "method", "step", "last loss", "base model")]
    for r in runs:
        step = (
            ""
            if r.step is None
            else f"{r.step}" + (f"/{r.max_steps}" if r.max_steps and r.max_steps > 0 else "")
        )
        state = r.state + (
            f" ({r.checkpoints} checkpoints)" if r.state == "stopped" and r.checkpoints else ""
        )
        loss = "" if r.last_loss is None else f"{r.last_loss:.4g}"
        rows.append(
            (_shown(r.path, root), state, r.stage or "", r.method or "", step, loss, r.base_model or "")
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    if any(r.state == "stopped" and r.checkpoints for r in runs):
        lines.append(
            "a stopped run resumes with: tuneforge train RUN/config.yaml train.resume_from_checkpoint=auto"
        )
    return "\n".join(lines)


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root)) if path != root else str(path)
    except ValueError:
        return str(path)


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _get(node: dict, *keys: str):
    for k in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(k)
    return node
