"""Step 4 of a run, first part: one data source -> rows -> validated Conversation / Document samples.

`load_dataset` is what the pipeline calls for each entry of ``data.datasets``: it resolves a
registry name (`tuneforge.data.dataset_registry`), finds the files or the hub dataset, reads the
rows, converts each with its format (`tuneforge.data.formats`) and validates it.

Files: ``.json`` (an array of objects; JSON Lines or one object also work), ``.jsonl`` (one object
per line), ``.csv`` (a header row; structured cells may hold JSON text), ``.parquet``, and
``.txt``: split on blank lines (lines holding only whitespace), each paragraph, its line breaks
kept, is one row ``{"text": ...}``. Folders are read recursively in sorted path order (hidden
files, other extensions and dataset_info.json skipped). A path that is neither a file nor a folder
is loaded with ``datasets.load_dataset(path, subset, split=split)``. Each row carries its origin,
1-based: "line 7" (where the row starts) in JSON, JSONL, CSV and TXT files, else "row 7".

For a preference stage (``sample_kind`` names a module of `tuneforge.data.kinds`), rows are read
by a conversation format plus the kind's own columns (chosen/rejected, label) and converted by the
kind.

Policy: a structurally broken source (invalid JSON or CSV, a row that is not an object, a
required or explicitly mapped column that no row has) is a DataError naming file, line and fix.
A row whose content is unusable (RowError from the converter or ``validate()``) is dropped and
counted under a short reason (`drop_reason`); the first row dropped for each reason is logged. A
source left with no samples is a DataError listing the reasons and the first dropped row.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from types import ModuleType
from typing import Any

from tuneforge.config.schema import DatasetConfig
from tuneforge.data.conversation import Sample
from tuneforge.data.dataset_registry import LF_COLUMNS, DatasetRegistry, resolve_entry
from tuneforge.data.formats import FORMATS
from tuneforge.data.kinds import get_kind
from tuneforge.errors import ConfigError, DataError, RowError
from tuneforge.registry import did_you_mean

log = logging.getLogger(__name__)

SOURCES_VERSION = "1"  # bump when reading or converting the same rows gives different samples
SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".txt")
Rows = Iterator[tuple[str, dict]]  # (origin such as "line 7", the row)

_WS = re.compile(r"[ \t\n\r]*")
# Conversation/Document.validate() messages -> reasons (converters write "reason: detail").
_VALIDATE_REASONS = (("has no messages", "no messages"), ("has role", "unknown role"),
                     ("is a system message", "system message not first"), ("text is empty", "empty text"),
                     ("is empty", "empty message"), ("no assistant message", "no assistant message"))  # fmt: skip
_KIND_WORDS = {"document": "plain text", "conversation": "conversations"}


@dataclass
class LoadedDataset:
    label: str  # what to call it in messages: the path or registry name
    samples: list  # converted and validated: Sample, or a kind's sample (PreferencePair, ...)
    dropped: Counter[str]  # reason -> count, for rows that were skipped
    fingerprint: str  # sha256 over the source bytes (or hub name) + format + columns + tags + max_samples


def load_dataset(
    spec: DatasetConfig,
    *,
    index: int,
    registry: DatasetRegistry | None,
    sample_kind: str,
    base_dir: Path | None = None,
    section: str = "data.datasets",
    convert: Callable[[ModuleType, dict, dict[str, str], dict[str, str]], Any] | None = None,
    optional_fields: frozenset[str] = frozenset(),
) -> LoadedDataset:
    """Read, convert and validate one source. ``index`` and ``section`` name it in messages
    (``data.datasets[0]``); ``sample_kind`` is what the stage trains on ('conversation' or
    'document'); relative paths start from ``base_dir`` (else the current folder).
    ``convert(fmt, row, columns, tags)`` replaces the format's own ``convert`` (e.g. prompt-only
    samples for RL stages); ``optional_fields`` are format fields that need not be present."""
    key = f"{section}[{index}]"
    label = spec.name or spec.path or ""
    if spec.name is not None:
        spec, base_dir = resolve_entry(spec, index, registry, sample_kind=sample_kind, section=section)
    assert spec.path is not None
    local = _local_path(spec.path, base_dir, key)
    files = _files(local, key) if local is not None else []

    txt_only = bool(files) and all(f.suffix.lower() == ".txt" for f in files)
    fmt_name = spec.format or ("text" if sample_kind == "document" or txt_only else "alpaca")
    kind = get_kind(sample_kind)  # preference / unpaired data: a conversation format + its columns
    fmt = _format(fmt_name, key, label, kind.BASE_KIND if kind else sample_kind)
    defaults = {**fmt.DEFAULT_COLUMNS, **kind.COLUMNS} if kind else fmt.DEFAULT_COLUMNS
    columns = _merge(fmt_name, "columns", defaults, spec.columns, key)
    tags = _merge(fmt_name, "tags", getattr(fmt, "DEFAULT_TAGS", {}), spec.tags, key)
    required = kind.required(fmt_name, fmt) if kind else set(fmt.REQUIRED)
    must = {f: columns[f] for f in (required - optional_fields) | set(spec.columns)}

    def to_sample(row: dict) -> Sample:
        if kind:
            return kind.convert(fmt_name, fmt, row, columns, tags)
        if convert:
            return convert(fmt, row, columns, tags)
        return fmt.convert(row, columns, tags)

    digest = hashlib.sha256()
    settings = [SOURCES_VERSION, fmt_name, columns, tags, spec.max_samples]
    if kind:
        settings.append(sample_kind)
    digest.update(json.dumps(settings, sort_keys=True).encode())
    if local is None:
        digest.update(json.dumps(["hub", spec.path, spec.subset, spec.split]).encode())
        sources: Iterator[tuple[str, Rows]] = iter([(spec.path, _hub_rows(spec, key, base_dir))])
    else:
        sources = ((_show(f), _file_rows(f, f.relative_to(local).as_posix(), digest)) for f in files)

    samples: list[Sample] = []
    dropped: Counter[str] = Counter()
    first: dict[str, str] = {}  # reason -> the first row dropped for it
    budget = spec.max_samples
    for shown, rows in sources:
        if budget is not None and budget <= 0:
            break
        batch = list(islice(rows, budget))
        budget = None if budget is None else budget - len(batch)
        _check_columns(batch, must, shown, key, fmt_name)
        for where, row in batch:
            try:
                sample = to_sample(row)
                sample.validate()
                samples.append(sample)
            except RowError as e:
                reason = drop_reason(e)
                dropped[reason] += 1
                if reason not in first:
                    first[reason] = f"{shown} {where}: {e}"
                    log.warning(
                        f"{key}: dropped {first[reason]} (further drops for {reason!r} are only counted)"
                    )
    if not samples:
        why = f"{dropped.total()} dropped: " + ", ".join(f"{r} x{n}" for r, n in dropped.most_common())
        tail = f"; first dropped: {next(iter(first.values()))}" if first else ""
        raise DataError(
            f"{key} ({label}): no usable samples after filtering ({why if dropped else 'the source has no rows'}){tail}"
        )
    return LoadedDataset(label=label, samples=samples, dropped=dropped, fingerprint=digest.hexdigest())


def drop_reason(err: RowError) -> str:
    """The short reason a dropped row is counted under (see the module docstring)."""
    msg = str(err)
    head, sep, _ = msg.partition(": ")
    if sep and len(head) <= 40:
        return head
    for needle, reason in _VALIDATE_REASONS:
        if needle in msg:
            return reason
    return re.sub(r"\d+", "N", msg)[:60]


def _local_path(path: str, base_dir: Path | None, key: str) -> Path | None:
    """The file or folder ``path`` names, or None for a hub dataset name."""
    p = Path(path).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    if p.exists():
        return p
    if p.suffix.lower() in SUFFIXES or Path(path).expanduser().is_absolute() or path.startswith((".", "~")):
        start = f" (relative paths start from {base_dir})" if base_dir is not None else ""
        raise DataError(f"{key}.path: {_show(p)} not found{start}; check the path")
    return None


def _files(root: Path, key: str) -> list[Path]:
    kinds = ", ".join(SUFFIXES)
    if root.is_file():
        if root.suffix.lower() not in SUFFIXES:
            raise DataError(
                f"{_show(root)}: unsupported file type {root.suffix or '(none)'!r}; use one of {kinds}"
            )
        return [root]
    found = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    files = [root / r for r in found if r.suffix.lower() in SUFFIXES and r.name != "dataset_info.json"]
    files = [f for f in files if not any(part.startswith(".") for part in f.relative_to(root).parts)]
    if not files:
        raise DataError(f"{key}.path: the folder {_show(root)} holds no data files ({kinds})")
    return files


def _format(name: str, key: str, label: str, sample_kind: str) -> ModuleType:
    try:
        fmt = FORMATS.get(name)
    except ConfigError as e:
        raise ConfigError(f"{key}.format: {e}") from None
    if fmt.KIND != sample_kind:
        fitting = " or ".join(n for n in FORMATS.names() if FORMATS.get(n).KIND == sample_kind)
        raise ConfigError(
            f"{key} ({label}): format {name} gives {_KIND_WORDS.get(fmt.KIND, fmt.KIND)} but this stage "
            f"trains on {_KIND_WORDS[sample_kind]}; set {key}.format: {fitting}"
        )
    return fmt


def _merge(
    fmt_name: str, what: str, defaults: dict[str, str], given: dict[str, str], key: str
) -> dict[str, str]:
    if given and not defaults:
        raise ConfigError(f"{key}.{what}: format {fmt_name} takes no {what}")
    for name in given:
        if name not in defaults:
            alias = LF_COLUMNS.get(fmt_name, {}).get(name) if what == "columns" else None
            hint = f" (LLaMA-Factory's {name!r} is {alias!r} here)" if alias else ""
            raise ConfigError(
                f"{key}.{what}.{name}: format {fmt_name} has no {what[:-1]} {name!r}; "
                f"{did_you_mean(name, list(defaults))}{hint}"
            )
    return {**defaults, **given}


def _check_columns(
    batch: list[tuple[str, dict]], must: dict[str, str], shown: str, key: str, fmt: str
) -> None:
    present = sorted(map(str, set().union(*(row for _, row in batch))))
    for field, column in sorted(must.items()):
        if not batch or column in present:
            continue
        close = difflib.get_close_matches(column, present, n=1)
        hint, listed = (f"Did you mean {close[0]!r}? " if close else ""), ", ".join(present) or "(none)"
        raise DataError(
            f"{shown}: no column {column!r}, which format {fmt} reads as its {field!r} field; the file's "
            f"columns are: {listed}. {hint}Set {key}.columns.{field}: <your column>"
        )


def _show(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


# --- reading rows -----------------------------------------------------------------------------


def _file_rows(path: Path, name: str, digest: Any) -> Rows:
    """Rows of one file; its name and bytes go into ``digest`` when it is read."""
    shown, suffix = _show(path), path.suffix.lower()
    digest.update(f"\0{name}\0{path.stat().st_size}\0".encode())
    if suffix == ".parquet":
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        yield from _parquet_rows(path, shown)
        return
    data = path.read_bytes()
    digest.update(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"{shown} line {line}: not UTF-8 text ({e.reason}); save the file as UTF-8") from None
    if suffix == ".csv":
        yield from _csv_rows(text, shown)
    elif suffix == ".txt":
        yield from _txt_rows(text)
    else:
        yield from _json_rows(
            text, shown, "fix or delete that line" if suffix == ".jsonl" else "fix the JSON there"
        )


def _json_rows(text: str, shown: str, fix: str) -> Rows:
    start = _WS.match(text).end()
    if start == len(text):
        return
    if text[start] == "[":
        yield from _json_array(text, shown, start)
        return
    try:
        json.loads(text[start:].split("\n", 1)[0])
        one_per_line = True
    except json.JSONDecodeError:
        one_per_line = False
    if not one_per_line:  # one object spread over lines, or invalid JSON: json's own error says where
        where = f"line {text.count(chr(10), 0, start) + 1}"
        yield where, _object(_loads(text, shown, fix), shown, where)
        return
    for n, line in enumerate(text.split("\n"), 1):
        if line.strip():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(
                    f"{shown} line {n}: invalid JSON ({e.msg}: column {e.colno}); {fix}"
                ) from None
            yield f"line {n}", _object(obj, shown, f"line {n}")


def _json_array(text: str, shown: str, start: int) -> Rows:
    """Items of a top-level array, each with the line it starts on (json.loads gives no positions)."""
    decoder = json.JSONDecoder()
    pos = _WS.match(text, start + 1).end()
    line, counted = 1 + text.count("\n", 0, pos), pos
    if text.startswith("]", pos):
        if _WS.match(text, pos + 1).end() != len(text):
            _loads(text, shown, "fix the JSON there")  # raises: something follows the array
        return
    while True:
        line, counted = line + text.count("\n", counted, pos), pos
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise _invalid_json(shown, e, "fix the JSON there") from None
        yield f"line {line}", _object(obj, shown, f"line {line}")
        pos = _WS.match(text, end).end()
        if text.startswith(",", pos):
            pos = _WS.match(text, pos + 1).end()
        elif text.startswith("]", pos) and _WS.match(text, pos + 1).end() == len(text):
            return
        else:
            _loads(text, shown, "fix the JSON there")  # raises with json's message and position
            raise DataError(f"{shown}: invalid JSON after line {line}")


def _loads(text: str, shown: str, fix: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise _invalid_json(shown, e, fix) from None


def _invalid_json(shown: str, e: json.JSONDecodeError, fix: str) -> DataError:
    return DataError(f"{shown} line {e.lineno}: invalid JSON ({e.msg}: column {e.colno}); {fix}")


def _object(obj: Any, shown: str, where: str) -> dict:
    if not isinstance(obj, dict):
        raise DataError(
            f"{shown} {where}: expected a JSON object (one row, its keys the columns), got a {type(obj).__name__}"
        )
    return obj


def _csv_rows(text: str, shown: str) -> Rows:
    # Long answers exceed csv's default 128 KiB cell limit.
    csv.field_size_limit(2**31 - 1)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        while header is not None:
            start = reader.line_num + 1
            cells = next(reader, None)
            if cells is None:
                return
            if not cells:
                continue
            if len(cells) > len(header):
                raise DataError(
                    f"{shown} line {start}: {len(cells)} cells but the header has {len(header)}; "
                    "quote cells that contain commas"
                )
            yield f"line {start}", dict(zip(header, cells, strict=False))  # short rows: cells missing
    except csv.Error as e:
        raise DataError(f"{shown} line {reader.line_num}: invalid CSV ({e})") from None


def _txt_rows(text: str) -> Rows:
    block: list[str] = []
    start = 0
    for n, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if line.strip():
            start = start if block else n
            block.append(line)
        elif block:
            yield f"line {start}", {"text": "\n".join(block)}
            block = []
    if block:
        yield f"line {start}", {"text": "\n".join(block)}


def _parquet_rows(path: Path, shown: str) -> Rows:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{shown}: not a readable Parquet file ({e})") from None
    n = 0
    for batch in pf.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            n += 1
            yield f"row {n}", row


def _hub_rows(spec: DatasetConfig, key: str, base_dir: Path | None) -> Rows:
    import datasets

    try:
        ds = datasets.load_dataset(spec.path, spec.subset, split=spec.split)
    except Exception as e:  # the hub client raises many types; all mean "cannot load", and we say why
        reason = " ".join(str(e).split())[:300] or type(e).__name__
        start = base_dir if base_dir is not None else Path.cwd()
        raise DataError(
            f"{key}.path {spec.path!r} is not a local file or folder, and loading it from the hub failed: "
            f"{reason}. Check the path (relative paths start from {start}), or download the dataset and "
            "point path at its files"
        ) from e
    for n, row in enumerate(ds, 1):
        yield f"row {n}", row
