"""The Compare page: several runs' loss curves on one chart and their numbers in one table (last
loss, eval metrics, the before/after score), and the leaderboards of the sweeps under the runs
folder (`tuneforge sweep` writes leaderboard.json)."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.routing import Route

from tuneforge.runs.listing import list_runs, run_info
from tuneforge.ui.paths import PathRefused, run_folder


def routes(ui) -> list[Route]:
    async def page(request: Request):
        rows, problems = [], []
        for name in request.query_params.getlist("run"):
            try:
                info = run_info(run_folder(ui.project, ui.runs, name))
            except PathRefused as e:
                problems.append(str(e))
                continue
            summary = (_json(info.path / "compare.json") or {}).get("summary", {})
            rows.append(
                {
                    "name": name,
                    "info": info,
                    "before": summary.get("before_accuracy"),
                    "after": summary.get("after_accuracy"),
                }
            )
        metrics = sorted({k for r in rows for k in r["info"].eval})
        everything = [str(r.path.relative_to(ui.runs)) for r in list_runs(ui.runs)]
        return ui.render(
            request,
            "compare.html",
            rows=rows,
            metrics=metrics,
            problems=problems,
            everything=everything,
            leaderboards=_leaderboards(ui),
        )

    return [Route("/compare", page)]


def _leaderboards(ui) -> list[dict]:
    boards = []
    for path in sorted(ui.runs.rglob("leaderboard.json")) if ui.runs.is_dir() else []:
        data = _json(path)
        if isinstance(data, dict) and isinstance(data.get("rows"), list):
            rows = [r for r in data["rows"] if isinstance(r, dict)]
            columns = [k for k in rows[0] if not isinstance(rows[0][k], (dict, list))] if rows else []
            boards.append(
                {"path": ui.rel(path), "metric": data.get("metric"), "rows": rows, "columns": columns}
            )
    return boards


def _json(path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
