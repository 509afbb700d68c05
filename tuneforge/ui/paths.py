"""Paths a page request names (a run, a data file, an export target), confined to the project
folder: a path that resolves outside it (``..``, an absolute path elsewhere, a symlink out) is
refused with a `PathRefused` naming it, before anything reads or writes there."""

from __future__ import annotations

from pathlib import Path

from tuneforge.artifacts.folder import is_run_folder

DATA_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".txt")
SKIPPED = {".git", ".tuneforge-ui", "__pycache__", "node_modules", ".venv", "venv"}


class PathRefused(ValueError):
    pass


def inside(project: Path, path: str | Path) -> Path:
    """``path`` (relative to the project, or absolute) resolved, if it lies inside the project."""
    if path is None or str(path).strip() == "":
        raise PathRefused("no path given")
    resolved = (project / path).resolve()
    if resolved != project and project not in resolved.parents:
        raise PathRefused(
            f"{path}: outside the project folder {project}; the page only reads and writes there"
        )
    return resolved


def run_folder(project: Path, runs: Path, name: str) -> Path:
    """The run folder a page URL names (relative to the runs folder), if it is one."""
    try:
        path = inside(project, runs / name)
    except PathRefused:
        raise PathRefused(
            f"{name}: outside the project folder; a run is named by its folder under {runs}"
        ) from None
    if not path.is_dir() or not is_run_folder(path):
        raise PathRefused(f"{name}: no run folder of that name under {runs}")
    return path


def data_files(project: Path, most: int = 500) -> list[str]:
    """Data files under the project (for the pickers), relative paths, run folders skipped."""
    found: list[str] = []
    stack = [project]
    while stack and len(found) < most:
        folder = stack.pop()
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.name in SKIPPED or entry.name.startswith("checkpoint-") or entry.is_symlink():
                continue
            if entry.is_dir():
                if not is_run_folder(entry):
                    stack.append(entry)
            elif entry.suffix in DATA_SUFFIXES:
                found.append(str(entry.relative_to(project)))
    return sorted(found)[:most]
