"""Step 1 of a run: the run folder is locked for this run (`run_folder_lock`), checked (never
silently overwritten; `output.overwrite` only ever removes what tuneforge wrote) and the resolved
config written into it, with the marker that says tuneforge made the folder.

    RUN_DIR/.tuneforge-run   {"tuneforge_run": 1, "created": ISO time, "tuneforge": version}
    RUN_DIR/.lock            {"pid", "host", "started", "pid_start", "argv"} while a run trains
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import logging
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from tuneforge.config.schema import Config
from tuneforge.errors import ConfigError

log = logging.getLogger("tuneforge")

MARKER = ".tuneforge-run"
LOCK = ".lock"
# every entry tuneforge (or a trainer it runs) writes into a run folder: all overwrite may remove
WRITTEN = frozenset(
    {
        *("config.yaml", "manifest.json", "adapter", "model", "tokenizer", "chat_template.jinja"),
        *("logs", ".staging", "loss.png", "compare.json", "compare.md", "eval", "train.log", "log.txt"),
        *("metrics.jsonl", "metrics.jsonl.tmp"),
        *("candidate.json", "deepspeed.json", "value_head.safetensors", "lora_drop.json"),
        "README.md",  # TRL's model card, written at every checkpoint of the preference stages
        MARKER,
        LOCK,
    }
)
# what training writes over: a folder that is not a run folder must not hold these
REPLACED = WRITTEN - {"train.log", "candidate.json", "logs", "eval", ".staging", MARKER, LOCK}
# a config.yaml that tuneforge resolved holds every section; one a user wrote rarely does
_RESOLVED_SECTIONS = {"model", "data", "method", "stage", "train", "output"}
_YOUNG_LOCK_S = 10  # an empty lock file younger than this is being written by its owner


def is_written_by_tuneforge(name: str) -> bool:
    """Whether a run folder entry of this name is one tuneforge writes (temporaries included)."""
    if name.endswith(".tmp"):  # atomic_write's NAME.tmp and save_run's .NAME.tmp
        name = name.removesuffix(".tmp")
        name = name[1:] if name.startswith(".") and name[1:] in WRITTEN else name
    step = name.removeprefix("checkpoint-")
    return name in WRITTEN or (step != name and step.isdigit())


def is_run_folder(run_dir: Path) -> bool:
    """A folder tuneforge made: it has the marker, or (older runs) a config.yaml next to a
    manifest.json or checkpoint-N, or a config.yaml that is a resolved tuneforge config."""
    if (run_dir / MARKER).is_file():
        return True
    if not (run_dir / "config.yaml").is_file():
        return False
    if (run_dir / "manifest.json").is_file() or any(run_dir.glob("checkpoint-*")):
        return True
    try:
        raw = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, OSError):
        return False
    return isinstance(raw, dict) and _RESOLVED_SECTIONS <= set(raw)


def input_paths(cfg: Config) -> list[tuple[str, Path]]:
    """Every existing file or folder the config names outside ``output`` (data, base model,
    prompts, reward files, teacher...), each with its dotted key."""
    found = []

    def walk(node, key: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{key}.{i}")
        elif isinstance(node, str) and node and "\n" not in node:
            for text in {node, node.split(":")[0]}:  # FILE.py:FUNCTION names FILE.py
                if text not in (".", "..") and _exists(Path(text).expanduser()):
                    found.append((key, Path(text).expanduser()))
                    break

    walk({k: v for k, v in cfg.model_dump(mode="json").items() if k != "output"}, "")
    return found


def check_run_dir(
    cfg: Config, config_path: str | Path | None = None, data_paths: Iterable[str | Path] | None = None
) -> Path:
    """Refuse to silently overwrite a finished run, restart over existing checkpoints, or write
    into a folder whose files tuneforge did not write. With ``output.overwrite``, empty a run
    folder of what tuneforge wrote, after refusing anything that is not plainly one (see
    `check_overwrite`). ``config_path`` is the YAML being run; ``data_paths`` what the run reads
    (default: every path the config names, `input_paths`)."""
    from tuneforge.training.checkpoints import latest_checkpoint

    run_dir = Path(cfg.output.dir)
    if cfg.train.resume_from_checkpoint:
        return run_dir
    if (run_dir / "manifest.json").is_file() and not cfg.output.overwrite:
        raise ConfigError(
            f"output.dir {run_dir} already holds a finished run; set output.overwrite=true to replace "
            "it, or choose another output.dir"
        )
    if latest_checkpoint(run_dir) and not cfg.output.overwrite:
        raise ConfigError(
            f"output.dir {run_dir} has checkpoints from an unfinished run; continue it with "
            "train.resume_from_checkpoint=auto, or set output.overwrite=true to start over"
        )
    if not run_dir.is_dir():
        if run_dir.exists():
            raise ConfigError(f"output.dir {run_dir} is a file, not a folder; choose another output.dir")
        return run_dir
    if cfg.output.overwrite:
        inputs = [("data file", Path(p)) for p in data_paths] if data_paths is not None else input_paths(cfg)
        for entry in check_overwrite(run_dir, config_path, inputs):
            _remove(entry)
    elif not is_run_folder(run_dir):
        clobbered = sorted(e.name for e in run_dir.iterdir() if e.name in REPLACED)
        if clobbered:
            raise ConfigError(
                f"output.dir {run_dir} is not a tuneforge run folder and holds {_names(clobbered)}, "
                "which training would replace; choose another output.dir"
            )
    return run_dir


def check_overwrite(
    run_dir: Path, config_path: str | Path | None, inputs: list[tuple[str, Path]]
) -> list[Path]:
    """What ``output.overwrite`` removes from ``run_dir``: every entry, all written by tuneforge.
    Refused, with a one-line ConfigError: a filesystem root, the home or current folder (or one
    holding them), a folder holding the config or an input, a folder tuneforge did not make, and
    a run folder holding anything tuneforge does not write (named, so it can be moved out)."""
    here = run_dir.resolve()
    why = None
    home, cwd = Path.home().resolve(), Path.cwd().resolve()
    if here == Path(here.anchor) or os.path.ismount(here):
        why = "is the root of a filesystem"
    elif _within(home, here):
        why = "is your home folder" if here == home else f"holds your home folder {home}"
    elif _within(cwd, here):
        why = "is the current folder" if here == cwd else f"holds the current folder {cwd}"
    elif config_path is not None and _within(Path(config_path).resolve(), here):
        why = f"holds the config file {config_path} being run"
    else:
        held = next(((k, p) for k, p in inputs if _within(p.resolve(), here)), None)
        if held is not None:
            why = f"holds {held[1]} ({held[0]}), which this run reads"
    if why:
        raise ConfigError(
            f"output.dir {run_dir} {why}; output.overwrite=true would delete it; choose a folder of its "
            "own for output.dir"
        )
    entries = [e for e in run_dir.iterdir() if e.name != LOCK]
    if entries and not is_run_folder(run_dir):
        raise ConfigError(
            f"output.dir {run_dir} is not a tuneforge run folder (no {MARKER}, no config.yaml with "
            "manifest.json or checkpoint-N); output.overwrite only replaces run folders: choose another "
            "output.dir"
        )
    foreign = sorted(
        e.name + ("/" if e.is_dir() else "") for e in entries if not is_written_by_tuneforge(e.name)
    )
    if foreign:
        raise ConfigError(
            f"output.dir {run_dir} holds {_names(foreign)}, which tuneforge did not write; "
            "output.overwrite=true removes only a run's own files: move those out, or choose another output.dir"
        )
    return entries


def write_config(cfg: Config, run_dir: Path) -> None:
    """Write the resolved config; a folder holding nothing but tuneforge's files gets the marker."""
    import tuneforge

    run_dir.mkdir(parents=True, exist_ok=True)
    marker = run_dir / MARKER
    if not marker.exists() and all(is_written_by_tuneforge(e.name) for e in run_dir.iterdir()):
        created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        atomic_write(
            marker, json.dumps({"tuneforge_run": 1, "created": created, "tuneforge": tuneforge.__version__})
        )
    atomic_write(
        run_dir / "config.yaml",
        yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True),
    )


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@contextmanager
def run_folder_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold ``RUN_DIR/.lock`` for the block: a second run into the same folder stops with a
    ConfigError naming the holder; a lock left by a process that is gone is taken over (one log
    line). The folder is made if missing, and removed again if the block leaves it empty."""
    run_dir = Path(run_dir)
    made = not run_dir.exists()
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"output.dir {run_dir} is a file, not a folder; choose another output.dir")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / LOCK
        fd = _acquire(path)
    except OSError as e:  # a parent that is a file, a read-only place, no space
        raise ConfigError(
            f"output.dir {run_dir} cannot be written ({e.strerror or e}); choose another output.dir"
        ) from None
    try:
        yield run_dir
    finally:
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                path.unlink()
        except OSError:
            pass
        os.close(fd)
        if made:
            try:
                run_dir.rmdir()  # only succeeds when nothing was written
            except OSError:
                pass


def lock_holder(run_dir: str | Path) -> dict | None:
    """What ``RUN_DIR/.lock`` says about the run holding it (None: no lock, or unreadable)."""
    try:
        info = json.loads((Path(run_dir) / LOCK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def running_holder(run_dir: str | Path) -> dict | None:
    """`lock_holder` where that process still runs (a lock left by a killed run counts as none)."""
    info = lock_holder(run_dir)
    return info if info is not None and _alive(info) else None


def _acquire(path: Path) -> int:
    for _ in range(5):  # the lock may be released or replaced while we look at it
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        except FileExistsError:
            fd = _take_over(path)
            if fd is None:
                continue
        else:
            _flock(fd, wait=True)  # others only ever hold a fresh lock file for a moment
        _write_info(fd)
        return fd
    raise ConfigError(f"output.dir {path.parent}: could not take {path}; try again")


def _take_over(path: Path) -> int | None:
    """The fd of a stale lock file, now held by us; None to try again; ConfigError when in use."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    keep = False
    try:
        locked = _flock(fd, wait=False)
        if locked and os.fstat(fd).st_ino != _inode(path):
            return None  # released (and perhaps taken anew) while we opened it
        info = lock_holder(path.parent)
        young = time.time() - os.fstat(fd).st_mtime < _YOUNG_LOCK_S
        if locked is False or (info is None and young) or (info is not None and _alive(info)):
            raise ConfigError(_in_use(path, info))
        keep = True
    finally:
        if not keep:
            os.close(fd)
    held = "the run that left an unreadable lock" if info is None else _holder_text(info)
    log.info("output.dir %s: %s is no longer running; taking over its lock", path.parent, held)
    return fd


def _flock(fd: int, wait: bool) -> bool | None:
    """True: locked; False: another process holds it; None: this filesystem has no flock."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        return True
    except BlockingIOError:
        return False
    except OSError as e:
        if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return None
        raise


def _write_info(fd: int) -> None:
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "pid_start": _process_start(os.getpid()),
        "argv": sys.argv,
    }
    data = json.dumps(info).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)


def _alive(info: dict) -> bool:
    """Whether the process a lock names still runs (one on another host is taken to)."""
    if info.get("host") != socket.gethostname():
        return True
    pid = info.get("pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return False  # our own pid: this process holds no flock on it, so it is a leftover
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    start = _process_start(pid)  # a reused pid belongs to a process started at another time
    return info.get("pid_start") is None or start is None or start == info["pid_start"]


def _process_start(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])  # field 22, starttime, after the command name


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _holder_text(info: dict) -> str:
    return f"tuneforge train (pid {info.get('pid')} on {info.get('host')} since {info.get('started')})"


def _in_use(path: Path, info: dict | None) -> str:
    run_dir = path.parent
    who = _holder_text(info) if info else "another tuneforge train (starting up)"
    other_host = info is not None and info.get("host") != socket.gethostname()
    hint = f" (if it no longer runs, delete {path})" if other_host else ""
    return f"output.dir {run_dir} is in use by {who}; wait for it or choose another output.dir{hint}"


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long for a path, or one holding a NUL
        return False


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink()


def _names(names: list[str], most: int = 5) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")
