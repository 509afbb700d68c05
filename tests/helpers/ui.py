"""Helpers for the web page's tests: a project folder with data and an eval task file, the New-run
form of a tiny run, and waiting for a job the page started."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.helpers.runs import write_alpaca

TASKS_YAML = """tasks:
  - name: generate
    label: identity
    path: data/heldout.jsonl
    metrics: [contains]
    max_new_tokens: 8
"""


def make_project(root: Path) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    write_alpaca(root / "data" / "identity.json")
    (root / "data" / "heldout.jsonl").write_text(
        json.dumps({"prompt": "What is your name?", "answer": "Forge"}) + "\n", encoding="utf-8"
    )
    (root / "eval").mkdir(exist_ok=True)
    (root / "eval" / "identity_tasks.yaml").write_text(TASKS_YAML, encoding="utf-8")
    return root


def train_form(model_dir: Path, name: str, max_steps: int = 6, **more: str) -> dict[str, str]:
    """What a person fills in on the New-run page for a tiny LoRA run."""
    return {
        "model.name_or_path": str(model_dir),
        "data.datasets": "- path: data/identity.json\n  format: alpaca",
        "data.max_length": "64",
        "method.name": "lora",
        "method.r": "4",
        "stage.name": "sft",
        "train.max_steps": str(max_steps),
        "train.logging_steps": "1",
        "train.per_device_train_batch_size": "2",
        "train.save_steps": str(max(1, max_steps // 3)),
        "output.dir": f"runs/{name}",
        "output.plot_loss": "false",
        **more,
    }


def wait_job(project: Path, job_id: str, timeout: float = 180):
    from tuneforge.ui.jobs import read_job

    end = time.time() + timeout
    while time.time() < end:
        job = read_job(project, job_id)
        if job is not None and job.state != "running":
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} still running after {timeout} s")


def job_of(response) -> str:
    """The job id a page redirected to (/jobs/ID)."""
    location = response.headers["location"]
    assert location.startswith("/jobs/"), location
    return location.rsplit("/", 1)[1]
