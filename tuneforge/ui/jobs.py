"""The commands the web page starts (`tuneforge train`, `eval`, `export`, `data inspect`), each a
plain tuneforge command line run as a detached process, so closing the page or restarting
`tuneforge ui` stops nothing.

A job is a JSON record in ``PROJECT/.tuneforge-ui/jobs/ID.json`` (its argv, the run folder it
belongs to, its pid) with its output in ``ID.log`` beside it. `tuneforge.ui.runner` runs the
command and writes the exit code into the record when it ends, which tells a failed run from a
stopped one after the page that started it is gone. No shell is used: the argv is a list, started
with ``subprocess.Popen`` in a session of its own.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tuneforge.artifacts.folder import atomic_write

JOBS = Path(".tuneforge-ui") / "jobs"
# exit codes of a command stopped on purpose: Ctrl-C / SIGINT (130, or -2 when killed by it) and
# SIGTERM; anything else non-zero is a failure
STOPPED_CODES = {130, -signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGTERM}


@dataclass
class Job:
    id: str
    kind: str  # train, eval, export, inspect
    argv: list[str]  # after "tuneforge"
    run_dir: str | None  # the run folder it trains, evaluates or exports (relative to the project)
    started: float
    pid: int | None = None  # the runner's pid (the command runs as its child, in the same session)
    exit_code: int | None = None
    ended: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def command(self) -> str:
        """The command line to type for the same job."""
        return shlex.join(["tuneforge", *self.argv])

    @property
    def state(self) -> str:
        if self.exit_code is None:
            return "running" if self.pid and _alive(self.pid) else "stopped"
        if self.exit_code == 0:
            return "finished"
        return "stopped" if self.exit_code in STOPPED_CODES else "failed"


def jobs_dir(project: Path) -> Path:
    return Path(project) / JOBS


def start_job(project: Path, kind: str, argv: list[str], run_dir: str | None, **extra) -> Job:
    """Start ``tuneforge ARGV`` in ``project`` as a detached process and return its record."""
    folder = jobs_dir(project)
    folder.mkdir(parents=True, exist_ok=True)
    job = Job(
        id=time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3),
        kind=kind,
        argv=[str(a) for a in argv],
        run_dir=run_dir,
        started=time.time(),
        extra=extra,
    )
    _write(project, job)
    env = dict(os.environ, PYTHONUNBUFFERED="1", TQDM_MININTERVAL="1")
    with open(folder / f"{job.id}.log", "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tuneforge.ui.runner", str(folder / f"{job.id}.json")],
            cwd=project,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the page's Stop signals it alone
            env=env,
        )
    job.pid = proc.pid
    _write(project, job)
    return job


def read_job(project: Path, job_id: str) -> Job | None:
    path = jobs_dir(project) / f"{job_id}.json"
    if not job_id.replace("-", "").isalnum() or not path.is_file():
        return None
    try:
        return Job(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError, OSError):
        return None


def list_jobs(project: Path) -> list[Job]:
    """Every job record, newest first."""
    folder = jobs_dir(project)
    if not folder.is_dir():
        return []
    jobs = [read_job(project, p.stem) for p in sorted(folder.glob("*.json"), reverse=True)]
    return [j for j in jobs if j is not None]


def latest_job_for(project: Path, run_dir: str, kind: str | None = None) -> Job | None:
    return latest_by_run(project, kind).get(run_dir)


def latest_by_run(project: Path, kind: str | None = None) -> dict[str, Job]:
    """Each run folder's newest job (of ``kind``), from one read of the records."""
    latest: dict[str, Job] = {}
    for job in list_jobs(project):  # newest first
        if job.run_dir and (kind is None or job.kind == kind):
            latest.setdefault(job.run_dir, job)
    return latest


def job_log(project: Path, job: Job, tail_bytes: int = 64_000) -> str:
    path = jobs_dir(project) / f"{job.id}.log"
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - tail_bytes))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def stop_job(job: Job) -> bool:
    """Ctrl-C for the job's process group, as in a terminal: training saves nothing new and says how
    to resume; False when it was not running."""
    if job.state != "running" or not job.pid:
        return False
    try:
        os.killpg(job.pid, signal.SIGINT)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _write(project: Path, job: Job) -> None:
    atomic_write(jobs_dir(project) / f"{job.id}.json", json.dumps(asdict(job), indent=1))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (ended, not yet reaped by the page that started it) is not running
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
