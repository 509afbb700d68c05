"""Where an export may write: a path that already holds something is replaced only when it is an
earlier export of the same kind (a folder with tuneforge_export.json, a GGUF file, a Modelfile
tuneforge wrote); anything else is refused in one line before any work starts."""

from __future__ import annotations

from pathlib import Path

from tuneforge.errors import ConfigError

EXPORT_MARK = "tuneforge_export.json"  # in every merged export folder
# the GGUF tensor types `tuneforge export --quant` writes (gguf.quants' K-quants and i-quants only read)
QUANTS = ("f32", "f16", "bf16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0")
MODELFILE_HEAD = "# Written by `tuneforge export`"


def check_folder(out: Path, flag: str) -> None:
    """``out`` is free, an empty folder, or an earlier merged export."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"{flag} {out}: is a file; give a folder name (it would hold the merged model)")
    if any(out.iterdir()) and not (out / EXPORT_MARK).is_file():
        raise ConfigError(
            f"{flag} {out}: the folder holds files that are not a tuneforge export ({EXPORT_MARK} is "
            "missing), and an export replaces the whole folder; give a new or empty folder"
        )


def check_file(path: Path, flag: str, looks_like: str) -> None:
    """``path`` is free, or an earlier export of this kind: a GGUF file (``looks_like`` "gguf") or a
    Modelfile tuneforge wrote ("modelfile")."""
    if not path.exists():
        return
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder; give a file name")
    head = path.open("rb").read(64)
    ours = head.startswith(b"GGUF") if looks_like == "gguf" else head.startswith(MODELFILE_HEAD.encode())
    if not ours:
        raise ConfigError(
            f"{flag} {path}: the file exists and is not an earlier export ({looks_like}); it would be "
            "replaced, so give a new file name"
        )
