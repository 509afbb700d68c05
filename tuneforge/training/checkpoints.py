"""Checkpoints of a run folder: where they are staged while written, what each records about
itself (its files' sizes and sha256, the data and method it was trained with), and which one a
resume starts from (`tuneforge.training.trainer` writes them; `tuneforge.train` resumes).

    checkpoint-N/tuneforge-checksums.json  {"files": {"optimizer.pt": {"size": .., "sha256": ..}, ..}}
    checkpoint-N/tuneforge-run.json        {"data_fingerprint", "data_config", "method_config", ..}
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from tuneforge.errors import ConfigError, TrainingError

if TYPE_CHECKING:
    from tuneforge.config.schema import Config

STAGING = ".staging"
CHECKSUMS = "tuneforge-checksums.json"
RUN_INFO = "tuneforge-run.json"
STATE = "trainer_state.json"
# what a checkpoint written before checksums must hold besides its state to be resumed from
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


def checkpoint_folders(run_dir: str | Path) -> list[Path]:
    """Every ``checkpoint-N`` folder of a run folder, newest first (damaged ones included)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = []
    for p in run_dir.iterdir():
        step = p.name.removeprefix(f"{PREFIX_CHECKPOINT_DIR}-")
        if p.is_dir() and step != p.name and step.isdigit():
            found.append((int(step), p))
    return [p for _, p in sorted(found, reverse=True)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint in a run folder (staging leftovers are never complete)."""
    return next((p for p in checkpoint_folders(run_dir) if (p / STATE).is_file()), None)


def run_identity(cfg: Config, data_fingerprint: str) -> dict:
    """What a checkpoint records about the run it belongs to (see `check_resume_compatible`)."""
    return {
        "data_fingerprint": data_fingerprint,
        "data_config": cfg.data.model_dump(mode="json"),
        "method_config": cfg.method.model_dump(mode="json"),
        "base_model": cfg.model.name_or_path,
        "stage": cfg.stage.name,
    }


def write_checkpoint_record(folder: Path, identity: dict | None) -> None:
    """Write the run's identity (when known) and every file's size and sha256 into ``folder``,
    a checkpoint that is complete but not yet renamed into place."""
    if identity is not None:
        (folder / RUN_INFO).write_text(json.dumps(identity, indent=2, default=str), encoding="utf-8")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != CHECKSUMS)
    digests = _sha256_all(files)
    record = {
        "files": {
            p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": d}
            for p, d in zip(files, digests, strict=True)
        }
    }
    (folder / CHECKSUMS).write_text(json.dumps(record, indent=1), encoding="utf-8")


def verify_checkpoint(folder: Path) -> str | None:
    """Why ``folder`` cannot be resumed from, in a few words; None when it can."""
    record = folder / CHECKSUMS
    if not record.is_file():  # written by a tuneforge without checksums
        return _verify_unrecorded(folder)
    try:
        files = {name: (int(f["size"]), str(f["sha256"])) for name, f in _read_json(record)["files"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return f"{CHECKSUMS} is unreadable"
    paths = {name: folder / name for name in files}
    for name, (size, _) in files.items():  # sizes first: cheap, and the usual damage
        if not paths[name].is_file():
            return f"{name} is missing"
        if (now := paths[name].stat().st_size) != size:
            return f"{name} is {now:,} bytes, {size:,} were written"
    names = list(files)
    for name, digest in zip(names, _sha256_all([paths[n] for n in names]), strict=True):
        if digest != files[name][1]:
            return f"{name} is not what was written (its sha256 differs)"
    return None


def resume_checkpoint(run_dir: str | Path) -> tuple[Path | None, list[str]]:
    """The newest checkpoint that verifies (None when the folder has none) and one line per
    checkpoint looked at: why each newer one was skipped, and which one is resumed from. Raises
    TrainingError when there are checkpoints but none is intact."""
    messages = []
    found = checkpoint_folders(run_dir)
    for folder in found:
        problem = verify_checkpoint(folder)
        if problem is None:
            messages.append(f"resuming from {folder}")
            return folder, messages
        messages.append(f"{folder.name} skipped: {problem}")
    if found:
        raise TrainingError(
            f"no intact checkpoint in {run_dir} ({'; '.join(messages)}); start over without "
            "train.resume_from_checkpoint and with output.overwrite=true"
        )
    return None, messages


def check_resume_compatible(
    checkpoint: Path,
    data_fingerprint: str,
    method_config: dict,
    allow: bool,
    *,
    data_config: dict | None = None,
    base_model: str | None = None,
    stage: str | None = None,
) -> list[str]:
    """Compare what ``checkpoint`` was trained with against this run (the keywords of
    `run_identity`). A difference raises ConfigError naming it, unless ``allow``
    (train.allow_changed_resume): then the differences come back as warning lines."""
    checkpoint = Path(checkpoint)
    name = checkpoint.name
    try:
        was = _read_json(checkpoint / RUN_INFO)
    except FileNotFoundError:
        return [
            f"{name} does not record its data and method settings (an older tuneforge wrote it); not checked"
        ]
    except ValueError:
        return [f"{name}: {RUN_INFO} is unreadable; its data and method settings are not checked"]
    now_method = json.loads(json.dumps(method_config, default=str))
    found, fixes = [], []
    if was.get("data_fingerprint") != data_fingerprint:
        changed = _changed("data", was.get("data_config"), data_config) if data_config is not None else []
        why = ", ".join(changed) or "the data files' contents or the tokenizer changed"
        found.append(
            f"{name} was trained on data {str(was.get('data_fingerprint'))[:8]}..., this config prepares "
            f"{data_fingerprint[:8]}... ({why})"
        )
        fixes.append("the same data")
    if was.get("method_config") != now_method:
        changed = _changed("method", was.get("method_config"), now_method)
        found.append(f"{name} was trained with other method settings ({', '.join(changed)})")
        fixes.append("the same method settings")
    for key, value in (("base_model", base_model), ("stage", stage)):
        if value is not None and was.get(key) not in (None, value):
            found.append(f"{name} was trained with {key} {was[key]!r}, this config has {value!r}")
            fixes.append(f"the same {key.replace('_', ' ')}")
    if not found:
        return []
    if allow:
        return [f"{line}; continuing (train.allow_changed_resume=true)" for line in found]
    raise ConfigError(
        "; ".join(found) + f"; resume with {' and '.join(fixes)}, or set train.allow_changed_resume=true "
        "to continue anyway"
    )


def is_no_space(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a write that failed for want of space: OSError
    ENOSPC/EDQUOT, safetensors' 'No space left on device (os error 28)', or torch.save's
    '[enforce fail at inline_container.cc] unexpected pos' / 'file write failed'."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(exc)
        if "No space left" in text or "os error 28" in text or "Disk quota exceeded" in text:
            return True
        if "inline_container" in text and ("unexpected pos" in text or "write failed" in text):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def no_space_error(run_dir: Path, writing: str) -> TrainingError:
    """The one-line error for a checkpoint (or the final save) that did not fit on the disk."""
    previous = latest_checkpoint(run_dir)
    device, mount = filesystem_of(run_dir)
    where = f"{device} (the filesystem of {run_dir}, mounted at {mount})"
    if previous is not None:
        then = (
            f"the previous checkpoint ({previous.name}) is intact; free space and resume with "
            "train.resume_from_checkpoint=auto"
        )
    else:
        then = "no earlier checkpoint is there; free space and run the same command again"
    return TrainingError(f"no space left on {where} while writing {writing}; {then}")


def filesystem_of(path: Path) -> tuple[str, str]:
    """The device (as /proc/self/mounts names it) and mount point ``path`` is stored on."""
    mount = Path(path).resolve()
    while not mount.exists():
        mount = mount.parent
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    try:
        for line in Path("/proc/self/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) > 1 and fields[1].replace("\\040", " ") == str(mount):
                return fields[0], str(mount)
    except OSError:
        pass
    return str(mount), str(mount)


def _verify_unrecorded(folder: Path) -> str | None:
    try:
        _read_json(folder / STATE)
    except FileNotFoundError:
        return f"{STATE} is missing"
    except ValueError:
        return f"{STATE} does not parse"
    weights = [p for p in folder.rglob("*") if p.suffix in _WEIGHT_SUFFIXES and p.name != "training_args.bin"]
    if not any(p.stat().st_size > 0 for p in weights):
        return "it holds no weights file (model or adapter .safetensors / .bin)"
    return None


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(str(e)) from e


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _sha256_all(paths: list[Path]) -> list[str]:
    # hashlib releases the GIL on large buffers: several files hash at once
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return list(pool.map(_sha256, paths))


def _changed(section: str, old, new) -> list[str]:
    """``section.key`` for every top-level key of a config section that differs (with the values
    when they are short scalars)."""
    old, new = old if isinstance(old, dict) else {}, new if isinstance(new, dict) else {}
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        short = all(
            isinstance(v, str | int | float | bool | type(None)) and len(repr(v)) < 40 for v in (a, b)
        )
        out.append(f"{section}.{key}: {a!r} -> {b!r}" if short else f"{section}.{key} changed")
    return out
