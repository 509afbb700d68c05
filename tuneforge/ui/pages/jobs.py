"""A job's page: a command the page started (eval, export), its exact command line, its state and
its output as it is written (event stream), and what it made once it ends."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from tuneforge.ui import jobs
from tuneforge.ui.events import stream, terminal_line


def routes(ui) -> list[Route]:
    async def show(request: Request):
        job = jobs.read_job(ui.project, request.path_params["id"])
        if job is None:
            return ui.render(request, "message.html", status_code=404, message="no such job")
        log = "\n".join(terminal_line(x) for x in jobs.job_log(ui.project, job).split("\n"))
        return ui.render(request, "job.html", job=job, log=log, run=_run_name(ui, job))

    async def events(request: Request):
        job = jobs.read_job(ui.project, request.path_params["id"])
        if job is None:
            return ui.render(request, "message.html", status_code=404, message="no such job")
        log = jobs.jobs_dir(ui.project) / f"{job.id}.log"

        def running() -> bool:
            now = jobs.read_job(ui.project, job.id)
            return now is not None and now.state == "running"

        def state() -> dict:
            now = jobs.read_job(ui.project, job.id)
            return {"state": now.state if now else "gone"}

        return stream(request, None, log, running, state)

    async def index(request: Request):
        return ui.render(request, "jobs.html", jobs=jobs.list_jobs(ui.project)[:100])

    return [Route("/jobs", index), Route("/jobs/{id}/events", events), Route("/jobs/{id}", show)]


def _run_name(ui, job: jobs.Job) -> str | None:
    if not job.run_dir:
        return None
    path = (ui.project / job.run_dir).resolve()
    return str(path.relative_to(ui.runs)) if ui.runs in path.parents else None
