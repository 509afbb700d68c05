"""The Runs page (every run folder under the runs folder, `tuneforge.runs.listing`) and a run's own
page: the live loss / learning-rate chart and log from its event stream, progress and time left,
Stop (Ctrl-C, as in a terminal) and Resume (`train.resume_from_checkpoint=auto`), the before/after
comparison and the manifest."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from tuneforge.artifacts.folder import running_holder
from tuneforge.runs.listing import RunInfo, list_runs, run_info
from tuneforge.training.metrics_log import FILE as METRICS
from tuneforge.training.metrics_log import read_metrics
from tuneforge.ui import jobs
from tuneforge.ui.events import stream, terminal_line
from tuneforge.ui.paths import PathRefused, inside, run_folder

LOG_LINES = 200


def routes(ui) -> list[Route]:
    async def index(request: Request):
        latest = jobs.latest_by_run(ui.project, "train")
        rows = [_row(ui, info, latest.get(ui.rel(info.path))) for info in list_runs(ui.runs)]
        return ui.render(request, "runs.html", runs=rows, root=ui.rel(ui.runs))

    async def show(request: Request):
        run_dir, refused = _run(ui, request)
        if refused:
            return refused
        info = run_info(run_dir)
        job = jobs.latest_job_for(ui.project, ui.rel(run_dir), "train")
        compare = _json(run_dir / "compare.json")
        return ui.render(
            request,
            "run.html",
            run=_row(ui, info, job),
            name=request.path_params["name"],
            log=log_tail(ui, run_dir, job),
            progress=progress(read_metrics(run_dir)),
            compare=compare,
            manifest=json.dumps(_json(run_dir / "manifest.json") or {}, indent=1),
            eval_report=(run_dir / "eval" / "report.md").is_file(),
            resume_command=_resume_argv(ui, run_dir),
        )

    async def metrics(request: Request):
        run_dir, refused = _run(ui, request)
        return refused or JSONResponse(read_metrics(run_dir))

    async def events(request: Request):
        run_dir, refused = _run(ui, request)
        if refused:
            return refused
        job = jobs.latest_job_for(ui.project, ui.rel(run_dir), "train")
        log = jobs.jobs_dir(ui.project) / f"{job.id}.log" if job and job.state == "running" else None

        def now() -> jobs.Job | None:  # the record as it is now: its exit code lands when it ends
            return jobs.read_job(ui.project, job.id) if job else None

        def running() -> bool:
            current = now()
            return bool(running_holder(run_dir)) or (current is not None and current.state == "running")

        def state() -> dict:
            return {**_row(ui, run_info(run_dir), now()), **progress(read_metrics(run_dir))}

        return stream(request, run_dir / METRICS, log, running, state)

    async def stop(request: Request):
        run_dir, refused = _run(ui, request)
        if refused:
            return refused
        job = jobs.latest_job_for(ui.project, ui.rel(run_dir), "train")
        if not (job and jobs.stop_job(job)):
            holder = running_holder(run_dir)  # a run started from a terminal: its process, by the lock
            if holder and holder.get("pid"):
                try:
                    os.kill(int(holder["pid"]), signal.SIGINT)
                except (ProcessLookupError, PermissionError):
                    pass
        return RedirectResponse(f"/runs/{request.path_params['name']}", status_code=303)

    async def resume(request: Request):
        run_dir, refused = _run(ui, request)
        if refused:
            return refused
        info = run_info(run_dir)
        if info.state == "running" or info.state == "finished":
            return ui.render(
                request,
                "message.html",
                status_code=409,
                message=f"{ui.rel(run_dir)} is {info.state}: only a stopped or failed run resumes",
            )
        jobs.start_job(ui.project, "train", _resume_argv(ui, run_dir), ui.rel(run_dir))
        return RedirectResponse(f"/runs/{request.path_params['name']}", status_code=303)

    return [
        Route("/runs", index),
        Route("/runs/{name:path}/metrics.json", metrics),
        Route("/runs/{name:path}/events", events),
        Route("/runs/{name:path}/stop", stop, methods=["POST"]),
        Route("/runs/{name:path}/resume", resume, methods=["POST"]),
        Route("/runs/{name:path}", show),
    ]


def _run(ui, request: Request):
    """The run folder the URL names; one a page-started job is about to make counts (the run's page
    opens at once, and shows the job's output until the folder appears)."""
    name = request.path_params["name"]
    try:
        return run_folder(ui.project, ui.runs, name), None
    except PathRefused as e:
        try:
            path = inside(ui.project, ui.runs / name)
        except PathRefused:
            path = None
        if path is not None and jobs.latest_job_for(ui.project, ui.rel(path), "train") is not None:
            return path, None
        return None, ui.render(request, "message.html", status_code=404, message=str(e))


def _row(ui, info: RunInfo, job: jobs.Job | None) -> dict:
    """A run as the pages show it (``job``: its newest page-started training, if any); a stopped run
    whose last page-started command failed is failed."""
    state = info.state
    if state == "stopped" and job is not None and job.state == "failed":
        state = "failed"
    if state != "running" and job is not None and job.state == "running":
        state = "running"  # started, not yet holding the run folder's lock
    if info.stage is None and job is not None and len(job.argv) > 1:  # the folder is not written yet
        _from_config(info, ui.project / job.argv[1])
    return {
        "name": str(info.path.relative_to(ui.runs)) if info.path != ui.runs else ".",
        "path": ui.rel(info.path),
        "state": state,
        "stage": info.stage,
        "method": info.method,
        "base_model": info.base_model,
        "step": info.step,
        "last_loss": info.last_loss,
        "eval": info.eval,
        "checkpoints": info.checkpoints,
    }


def _from_config(info: RunInfo, path: Path) -> None:
    """Stage, method and base model from the config a starting run trains with."""
    from tuneforge.config.raw import read_raw
    from tuneforge.errors import ConfigError

    try:
        raw = read_raw(path, [])
    except ConfigError:
        return
    section = {k: v for k, v in raw.items() if isinstance(v, dict)}
    info.stage = section.get("stage", {}).get("name", "sft")
    info.method = section.get("method", {}).get("name", "lora")
    info.base_model = section.get("model", {}).get("name_or_path")


def progress(records: list[dict]) -> dict:
    """Step, the run's max steps, the share done and the seconds left, from metrics.jsonl."""
    steps = [r for r in records if isinstance(r.get("step"), int) and isinstance(r.get("time"), (int, float))]
    if not steps:
        return {"step": 0, "max_steps": None, "done": 0.0, "seconds_left": None}
    last = steps[-1]
    total = next((r["max_steps"] for r in reversed(steps) if isinstance(r.get("max_steps"), int)), None)
    out = {"step": last["step"], "max_steps": total, "done": 0.0, "seconds_left": None}
    if total:
        out["done"] = min(1.0, last["step"] / total)
        first = steps[0]
        if last["step"] > first["step"]:
            per_step = (last["time"] - first["time"]) / (last["step"] - first["step"])
            out["seconds_left"] = round(max(0, total - last["step"]) * per_step)
    return out


def log_tail(ui, run_dir: Path, job: jobs.Job | None) -> str:
    """The last lines of what the run printed: its page-started command's output, else its log.txt."""
    text = jobs.job_log(ui.project, job) if job else ""
    if not text and (run_dir / "log.txt").is_file():
        text = (run_dir / "log.txt").read_text(encoding="utf-8", errors="replace")[-64_000:]
    return "\n".join(terminal_line(line) for line in text.split("\n")[-LOG_LINES:])


def _resume_argv(ui, run_dir: Path) -> list[str]:
    return ["train", ui.rel(run_dir / "config.yaml"), "train.resume_from_checkpoint=auto"]


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
