"""The New-run page: a form generated from the config schema (`tuneforge.ui.form`), started from an
example config or cloned from an earlier run, with a live preview of the YAML and the command.
Start validates it as the CLI does, writes the YAML to ``configs/NAME.yaml`` in the project and
launches ``tuneforge train configs/NAME.yaml`` (`tuneforge.ui.jobs`): the same run a terminal makes."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from tuneforge.artifacts.folder import is_run_folder, running_holder
from tuneforge.config.raw import read_raw
from tuneforge.errors import ConfigError
from tuneforge.ui import form as schema_form
from tuneforge.ui import form_errors, jobs
from tuneforge.ui.paths import PathRefused, inside
from tuneforge.ui.posted import posted

HEADER = "# written by tuneforge ui"
CONFIGS = "configs"


def routes(ui) -> list[Route]:
    async def page(request: Request):
        raw, source, problem = _start_from(ui, request.query_params)
        return _render(ui, request, raw, source=source, general=[problem] if problem else [])

    async def fields(request: Request):  # the method / stage choice changed: its fields change
        raw = schema_form.raw_from_form(await posted(request))
        return ui.render(request, "new_fields.html", sections=schema_form.form_sections(raw))

    async def preview(request: Request):
        raw = schema_form.raw_from_form(await posted(request))
        _, errors, general = form_errors.errors_by_field(raw)
        general += _place_problems(ui, raw)
        return ui.render(request, "new_preview.html", **_preview(ui, raw), errors=errors, general=general)

    async def start(request: Request):
        values = await posted(request)
        raw = schema_form.raw_from_form(values)
        cfg, errors, general = form_errors.errors_by_field(raw)
        general += _place_problems(ui, raw)
        if cfg is None or errors or general:
            return _render(ui, request, raw, errors=errors, general=general, status_code=422)
        shown = _preview(ui, raw)
        path = ui.project / shown["config_path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(shown["yaml"], encoding="utf-8")
        out = inside(ui.project, cfg.output.dir)
        jobs.start_job(ui.project, "train", ["train", shown["config_path"]], ui.rel(out))
        return RedirectResponse(f"/runs/{out.relative_to(ui.runs)}", status_code=303)

    return [
        Route("/new", page),
        Route("/new/fields", fields, methods=["POST"]),
        Route("/new/preview", preview, methods=["POST"]),
        Route("/new", start, methods=["POST"]),
    ]


def examples(ui) -> list[str]:
    """The project's example train configs (YAML files with a model and a data section)."""
    found = []
    for path in (
        sorted((ui.project / "examples").rglob("*.yaml")) if (ui.project / "examples").is_dir() else []
    ):
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, OSError, UnicodeDecodeError):
            continue
        if isinstance(raw, dict) and {"model", "data"} <= set(raw):
            found.append(ui.rel(path))
    return found


def _start_from(ui, query) -> tuple[dict, str, str | None]:
    """The raw config the form starts from: an example (``?example=``), an earlier run's resolved
    config with a fresh output folder (``?clone=``), or a blank one."""
    try:
        if query.get("example"):
            path = inside(ui.project, query["example"])
            return read_raw(path, []), ui.rel(path), None
        if query.get("clone"):
            run_dir = inside(ui.project, ui.runs / query["clone"])
            raw = read_raw(run_dir / "config.yaml", [])
            raw.setdefault("output", {})["dir"] = ui.rel(_free_name(run_dir))
            raw.pop("config_version", None)
            return raw, f"a clone of {ui.rel(run_dir)}", None
    except (PathRefused, ConfigError) as e:
        return _blank(ui), "a blank config", str(e)
    return _blank(ui), "a blank config", None


def _blank(ui) -> dict:
    return {
        "model": {"name_or_path": ""},
        "data": {"datasets": [{"path": ""}]},
        "output": {"dir": ui.rel(ui.runs / "my-run")},
    }


def _free_name(run_dir: Path) -> Path:
    n = 2
    while (run_dir.parent / f"{run_dir.name}-{n}").exists():
        n += 1
    return run_dir.parent / f"{run_dir.name}-{n}"


def _preview(ui, raw: dict) -> dict:
    out = str((raw.get("output") or {}).get("dir") or "runs/latest")
    config_path = f"{CONFIGS}/{Path(out).name or 'run'}.yaml"
    command = shlex.join(["tuneforge", "train", config_path])
    text = f"# {command}\n{HEADER}\n" + yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)
    return {"yaml": text, "command": command, "config_path": config_path}


def _place_problems(ui, raw: dict) -> list[str]:
    """Where the run would go and the YAML would be written: inside the runs folder, not over a run
    that is running or finished (unless output.overwrite), not over a config the page did not write."""
    out = (raw.get("output") or {}).get("dir") or "runs/latest"
    try:
        path = inside(ui.project, out)
    except PathRefused as e:
        return [f"output.dir: {e}"]
    if ui.runs not in path.parents:
        return [f"output.dir: {out} is not under {ui.rel(ui.runs)}, the folder this page lists runs from"]
    problems = []
    if path.is_dir() and is_run_folder(path):
        if running_holder(path):
            problems.append(f"output.dir: {out} is training now; choose another output.dir")
        elif (path / "manifest.json").is_file() and not (raw.get("output") or {}).get("overwrite"):
            problems.append(
                f"output.dir: {out} holds a finished run; choose another output.dir or set output.overwrite"
            )
    config_file = ui.project / _preview(ui, raw)["config_path"]
    if config_file.is_file() and HEADER not in config_file.read_text(encoding="utf-8", errors="replace"):
        problems.append(
            f"{ui.rel(config_file)} exists and was not written by this page; choose another output.dir"
        )
    return problems


def _render(ui, request, raw: dict, source: str = "", errors=None, general=None, status_code: int = 200):
    sections = schema_form.form_sections(raw)
    if errors:
        form_errors.apply_errors(sections, errors)
    return ui.render(
        request,
        "new.html",
        status_code=status_code,
        sections=sections,
        source=source,
        examples=examples(ui),
        general=general or [],
        errors=errors or {},
        **_preview(ui, raw),
    )
