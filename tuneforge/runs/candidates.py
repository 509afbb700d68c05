"""The candidate runner shared by `tuneforge sweep` and `tuneforge bench methods`: train several
configs one after another, each in its own run folder under a parent folder, and collect one
result row per candidate.

Each candidate is a child process (`python -m tuneforge train CONFIG overrides...`), so its peak
resident memory is its own (``os.wait4`` gives that child's rusage) and a crash in one candidate
does not take the others down. Resumable: a candidate whose run folder has a manifest.json is not
trained again, and one with checkpoints continues from the latest (``train.resume_from_checkpoint
=auto`` is always passed). What the runner measures itself (wall time, peak memory) is kept in
RUN_DIR/candidate.json; everything else is read from the run's manifest, generically by key.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tuneforge.config.load import load_config

MEASURED = "candidate.json"


@dataclass
class Candidate:
    """One config to train: the base YAML plus overrides, trained into ``parent/name``."""

    name: str
    config: Path
    overrides: list[str] = field(default_factory=list)


def prepared_overrides(cand: Candidate, run_dir: Path) -> list[str]:
    return [*cand.overrides, f"output.dir={run_dir}", "train.resume_from_checkpoint=auto"]


def validate_all(candidates: list[Candidate], parent: Path) -> None:
    """Load every candidate's config first, so a typo fails before anything trains."""
    for cand in candidates:
        load_config(cand.config, prepared_overrides(cand, parent / cand.name))


def run_candidates(candidates: list[Candidate], parent: Path, *, echo=print) -> list[dict]:
    """Train the candidates that have no finished run yet; return one result row each."""
    from tuneforge.threads import announce

    validate_all(candidates, parent)
    announce()  # the thread count chosen for every candidate, if the command chose one
    parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, cand in enumerate(candidates, 1):
        run_dir = parent / cand.name
        if (run_dir / "manifest.json").is_file():
            echo(f"[{i}/{len(candidates)}] {cand.name}: finished earlier, not retrained")
            status = "done"
        else:
            status = train_candidate(cand, run_dir, echo=lambda m, i=i: echo(f"[{i}/{len(candidates)}] {m}"))
        rows.append(collect(cand, run_dir, status))
    return rows


def train_candidate(cand: Candidate, run_dir: Path, *, echo=print) -> str:
    """Train one candidate in a child process; 'trained', 'resumed' or 'failed'."""
    from tuneforge.training.checkpoints import latest_checkpoint

    resumed = latest_checkpoint(run_dir) is not None
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "train.log"
    cmd = [sys.executable, "-m", "tuneforge", "train", str(cand.config), *prepared_overrides(cand, run_dir)]
    echo(f"{cand.name}: {'resuming' if resumed else 'training'} (log: {log_path})")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    with log_path.open("a", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        # wait4 reports this child's own peak RSS (getrusage(RUSAGE_CHILDREN) is the max over all)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    measured = {
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux reports kilobytes
        "exit_code": child.returncode,
        "resumed": resumed,
    }
    (run_dir / MEASURED).write_text(json.dumps(measured, indent=2))
    if child.returncode != 0 or not (run_dir / "manifest.json").is_file():
        echo(f"{cand.name}: FAILED (exit {child.returncode}); last lines of {log_path}:\n{_tail(log_path)}")
        return "failed"
    echo(f"{cand.name}: done in {wall:.0f}s")
    return "resumed" if resumed else "trained"


def collect(cand: Candidate, run_dir: Path, status: str) -> dict:
    """One result row: the runner's measurements plus what the manifest holds."""
    from tuneforge.methods import METHODS

    row: dict = {"name": cand.name, "run_dir": str(run_dir), "status": status, "overrides": cand.overrides}
    measured = run_dir / MEASURED
    if measured.is_file():
        row.update(json.loads(measured.read_text()))
    if status == "failed" or not (run_dir / "manifest.json").is_file():
        row["status"] = "failed"
        return row
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    metrics = manifest.get("metrics", {})
    params = manifest.get("parameters") or {}
    row["method"] = manifest.get("method")
    if params.get("total"):
        row["trainable"], row["total"] = params["trainable"], params["total"]
        row["trainable_share"] = params["trainable"] / params["total"]
    row["train_loss"] = metrics.get("last_train_loss", metrics.get("train_loss"))
    row["eval_loss"] = metrics.get("eval_loss")
    steps, seen = metrics.get("global_step"), metrics.get("num_input_tokens_seen")
    if steps and seen and metrics.get("train_steps_per_second"):
        # tokens per step x steps per second since the last resume: right for resumed runs too
        row["tokens_per_s"] = round(seen / steps * metrics["train_steps_per_second"], 1)
    compare = manifest.get("compare") or {}
    row["accuracy"] = compare.get("after_accuracy")
    row["accuracy_before"] = compare.get("before_accuracy")
    artifact = run_dir / manifest.get("artifact", "model")
    row["size_mb"] = round(_folder_bytes(artifact) / 2**20, 2) if artifact.is_dir() else None
    method = row["method"]
    row["merges"] = bool(METHODS.get(method).SUPPORTS.get("merge")) if method in METHODS else None
    row["metrics"] = flatten({"metrics": metrics, "compare": compare})
    return row


def flatten(tree: dict, prefix: str = "") -> dict[str, float]:
    """Every number in a nested mapping under its dotted key (eval scores land wherever they are)."""
    out: dict[str, float] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = value
    return out


def metric_value(row: dict, name: str) -> float | None:
    """A row's value for ``name``: a result column (eval_loss, accuracy, peak_rss_mb, ...) or any
    manifest number by its dotted key or its last component (``after_accuracy``, ``eval.exact_match``)."""
    if isinstance(row.get(name), int | float) and not isinstance(row.get(name), bool):
        return row[name]
    flat = row.get("metrics", {})
    for key in (name, f"metrics.{name}", f"compare.{name}"):
        if key in flat:
            return flat[key]
    hits = [v for k, v in flat.items() if k.endswith("." + name)]
    return hits[0] if len(hits) == 1 else None


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _tail(path: Path, lines: int = 8) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join("    " + line for line in text[-lines:])
