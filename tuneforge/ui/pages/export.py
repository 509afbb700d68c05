"""The Export page: a run as a merged HF folder, one GGUF file (with the tensor type chosen) or an
Ollama Modelfile, by `tuneforge export` started as a job, whose page shows the check each export
runs after writing (reloaded logits, the stop token)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from tuneforge.ui import jobs
from tuneforge.ui.paths import PathRefused, inside, run_folder
from tuneforge.ui.posted import posted

KINDS = ("merge", "gguf", "ollama")


def routes(ui) -> list[Route]:
    from tuneforge.export.targets import QUANTS

    async def page(request: Request):
        return _page(ui, request, request.query_params.get("run", ""), [], QUANTS)

    async def start(request: Request):
        values = await posted(request)
        kind, quant = values.get("kind", ""), values.get("quant", "f16")
        try:
            run_dir = run_folder(ui.project, ui.runs, values.get("run", ""))
        except PathRefused as e:
            return _page(ui, request, values.get("run", ""), [str(e)], QUANTS, 422)
        name = values.get("run", "").replace("/", "-")
        out = values.get("out", "").strip() or _default_out(name, kind, quant)
        problems = []
        if kind not in KINDS:
            problems.append(f"kind: one of {', '.join(KINDS)}")
        if quant not in QUANTS:
            problems.append(f"quant: one of {', '.join(QUANTS)}")
        try:
            target = inside(ui.project, out)
        except PathRefused as e:
            problems.append(f"out: {e}")
        if problems:
            return _page(ui, request, values.get("run", ""), problems, QUANTS, 422)
        argv = ["export", ui.rel(run_dir), f"--{kind}", ui.rel(target)]
        if kind != "merge":
            argv += ["--quant", quant]
        if values.get("check_stop") != "on":
            argv.append("--no-check-stop")
        job = jobs.start_job(ui.project, "export", argv, ui.rel(run_dir), made=ui.rel(target))
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    return [Route("/export", page), Route("/export", start, methods=["POST"])]


def _default_out(name: str, kind: str, quant: str) -> str:
    return {"merge": f"exports/{name}-merged", "gguf": f"exports/{name}-{quant}.gguf"}.get(
        kind, f"exports/{name}-ollama"
    )


def _page(ui, request, run: str, problems: list[str], quants, status_code: int = 200):
    finished = ui.finished_runs()
    return ui.render(
        request,
        "export.html",
        status_code=status_code,
        run=run,
        finished=finished,
        quants=quants,
        problems=problems,
    )
