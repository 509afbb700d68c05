"""The Evaluate page: run eval tasks on a run and its base model (`tuneforge eval RUN --tasks ...`,
started as a job), and the before/after report with its plots once it is written."""

from __future__ import annotations

import yaml
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse
from starlette.routing import Route

from tuneforge.ui import jobs
from tuneforge.ui.paths import PathRefused, inside, run_folder
from tuneforge.ui.posted import posted

BUILT_IN = ("mmlu",)
PLOTS = ("eval_tasks.png", "eval_subjects.png")


def routes(ui) -> list[Route]:
    async def page(request: Request):
        return _page(ui, request, request.query_params.get("run", ""), [])

    async def start(request: Request):
        values = await posted(request)
        problems = []
        try:
            run_dir = run_folder(ui.project, ui.runs, values.get("run", ""))
        except PathRefused as e:
            return _page(ui, request, values.get("run", ""), [str(e)], 422)
        tasks = values.get("tasks", "").split()
        if not tasks:
            problems.append("tasks: choose a task file or name a benchmark (mmlu)")
        for task in tasks:
            if task.split("=")[0] not in BUILT_IN:
                try:
                    if not inside(ui.project, task).is_file():
                        problems.append(f"tasks: {task} not found in the project")
                except PathRefused as e:
                    problems.append(f"tasks: {e}")
        limit = values.get("limit", "").strip()
        if limit and not limit.isdigit():
            problems.append(f"limit: {limit!r} is not a whole number")
        if problems:
            return _page(ui, request, values.get("run", ""), problems, 422)
        argv = ["eval", ui.rel(run_dir), "--tasks", *tasks]
        argv += ["--limit", limit] if limit else []
        argv += ["--no-base"] if values.get("no_base") == "on" else []
        job = jobs.start_job(ui.project, "eval", argv, ui.rel(run_dir))
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    async def report(request: Request):
        try:
            run_dir = run_folder(ui.project, ui.runs, request.query_params.get("run", ""))
        except PathRefused as e:
            return ui.render(request, "message.html", status_code=404, message=str(e))
        folder = run_dir / "eval"
        text = (folder / "eval.md").read_text(encoding="utf-8") if (folder / "eval.md").is_file() else None
        plots = [p for p in PLOTS if (folder / p).is_file()]
        return ui.render(
            request, "eval_report.html", run=request.query_params["run"], report=text, plots=plots
        )

    async def plot(request: Request):
        name = request.query_params.get("name", "")
        try:
            run_dir = run_folder(ui.project, ui.runs, request.query_params.get("run", ""))
        except PathRefused as e:
            return ui.render(request, "message.html", status_code=404, message=str(e))
        if name not in PLOTS or not (run_dir / "eval" / name).is_file():
            return ui.render(request, "message.html", status_code=404, message="no such plot")
        return FileResponse(run_dir / "eval" / name)

    return [
        Route("/evaluate", page),
        Route("/evaluate", start, methods=["POST"]),
        Route("/evaluate/report", report),
        Route("/evaluate/plot", plot),
    ]


def task_files(ui) -> list[str]:
    """YAML files in the project's examples and eval folders that hold a list of eval tasks."""
    found = []
    for top in ("examples", "eval", "tasks"):
        folder = ui.project / top
        for path in sorted(folder.rglob("*.yaml")) if folder.is_dir() else []:
            try:
                raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (yaml.YAMLError, OSError, UnicodeDecodeError):
                continue
            if isinstance(raw, dict) and isinstance(raw.get("tasks"), list) and "model" not in raw:
                found.append(ui.rel(path))
    return found


def _page(ui, request, run: str, problems: list[str], status_code: int = 200):
    finished = ui.finished_runs()
    return ui.render(
        request,
        "evaluate.html",
        status_code=status_code,
        run=run,
        finished=finished,
        task_files=task_files(ui),
        problems=problems,
    )
