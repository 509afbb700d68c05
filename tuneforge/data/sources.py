"""Step 4 of a run, first part: one data source -> rows -> validated Conversation / Document samples.

`load_dataset` is what the pipeline calls for each entry of ``data.datasets``: it resolves a
registry name (`tuneforge.data.dataset_registry`), finds the files or the hub dataset, reads the
rows, converts each with its format (`tuneforge.data.formats`) and validates it.

Files: ``.json`` (an array of objects; JSON Lines or one object also work), ``.jsonl`` (one object
per line), ``.csv`` (a header row; structured cells may hold JSON text), ``.parquet``, and
``.txt``: by ``text_unit``, split on blank lines (lines holding only whitespace) so each paragraph,
its line breaks kept, is one row ``{"text": ...}`` (the default), or each non-blank line is one row
(LLaMA-Factory's way, the default for its dataset_info.json entries), or the whole file is. Folders are read recursively in sorted path order (hidden
files, other extensions and dataset_info.json skipped). A path that is neither a file nor a folder
is loaded with ``datasets.load_dataset(path, subset, split=split)``. Each row carries its origin,
1-based: "line 7" (where the row starts) in JSON, JSONL, CSV and TXT files ("line 1, row 5" for an
item of a JSON array that starts on the line of the one before), else "row 7"; every sample keeps it
(``origin``) so a sample dropped later is shown with it. An empty CSV cell is null, as pandas reads it.

For a preference stage (``sample_kind`` names a module of `tuneforge.data.kinds`), rows are read
by a conversation format plus the kind's own columns (chosen/rejected, label) and converted by the
kind.

Policy: a structurally broken source (invalid JSON or CSV, JSON nested too deeply to read, a quote
left open, a row that is not an object, a required or explicitly mapped column that no row has, a
column named twice) is a DataError naming file, line and fix. A row whose content is unusable
(RowError from the converter or ``validate()``, a string holding a lone UTF-16 surrogate, which no
tokenizer can encode) is dropped and counted under a short reason (`drop_reason`); the first row
dropped for each reason is logged. A source left with no samples is a DataError listing the reasons
and the first dropped row. Images (an ``images`` column, ``<image>`` placeholders; videos and audio
alike) are not read: a source that has them gets one warning.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import logging
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from types import ModuleType
from typing import Any

from tuneforge.config.schema import DatasetConfig
from tuneforge.data.conversation import Sample
from tuneforge.data.dataset_registry import LF_COLUMNS, DatasetRegistry, resolve_entry
from tuneforge.data.formats import FORMATS
from tuneforge.data.formats.openai import MISSING
from tuneforge.data.kinds import get_kind
from tuneforge.errors import ConfigError, DataError, RowError
from tuneforge.registry import did_you_mean

log = logging.getLogger(__name__)

SOURCES_VERSION = "2"  # bump when reading or converting the same rows gives different samples
SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".txt")
Rows = Iterator[tuple[str, dict]]  # (origin such as "line 7", the row)

_WS = re.compile(r"[ \t\n\r]*")
# Conversation/Document.validate() messages -> reasons (converters write "reason: detail").
_VALIDATE_REASONS = (("has no messages", "no messages"), ("has role", "unknown role"),
                     ("is a system message", "system message not first"), ("text is empty", "empty text"),
                     ("is empty", "empty message"), ("no assistant message", "no assistant message"))  # fmt: skip
_KIND_WORDS = {"document": "plain text", "conversation": "conversations"}
LONE_SURROGATE = "invalid unicode (lone surrogate)"
MAX_EXAMPLES = 5  # dropped rows kept (with file and line) to show beside the counts
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # JSON's only way to write a surrogate
_LONE = re.compile("[\ud800-\udfff]")  # json pairs the halves it can; any left is alone
_MEDIA = ("image", "video", "audio")  # LLaMA-Factory's columns are these + "s", its placeholders <these>
_MEDIA_COLUMNS = frozenset(m + "s" for m in _MEDIA)


@dataclass
class LoadedDataset:
    label: str  # what to call it in messages: the path or registry name
    samples: list  # converted and validated: Sample, or a kind's sample (PreferencePair, ...)
    dropped: Counter[str]  # reason -> count, for rows that were skipped
    fingerprint: str  # sha256 over the source bytes (or hub name) + format + columns + tags + max_samples
    # (reason, "FILE line N: message"): the first dropped row of each reason, then more up to MAX_EXAMPLES
    dropped_examples: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Scan:
    """What one file's text may hold, found by one search of the whole text, so its rows are searched
    only where it can be there."""

    surrogates: bool = False  # a \uD800-\uDFFF escape (JSON): a string may hold a lone surrogate
    placeholders: bool = False  # <image>, <video> or <audio> somewhere


@dataclass
class _Tally:
    """The samples converted so far, and the rows dropped: by reason, the first of each, examples."""

    key: str
    samples: list = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    first: dict[str, str] = field(default_factory=dict)
    examples: list[tuple[str, str]] = field(default_factory=list)

    def drop(self, e: RowError, at: str) -> None:
        reason, text = drop_reason(e), f"{at}: {e}"
        self.dropped[reason] += 1
        if reason not in self.first:
            self.first[reason] = text
            self.examples.append((reason, text))
            log.warning(f"{self.key}: dropped {text} (further drops for {reason!r} are only counted)")
        elif len(self.examples) < MAX_EXAMPLES:
            self.examples.append((reason, text))


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
    unit_given = spec.text_unit if "text_unit" in spec.model_fields_set else None
    if spec.name is not None:
        spec, base_dir = resolve_entry(spec, index, registry, sample_kind=sample_kind, section=section)
    assert spec.path is not None
    local = _local_path(spec.path, base_dir, key)
    files = _files(local, key) if local is not None else []
    has_txt = any(f.suffix.lower() == ".txt" for f in files)
    if unit_given not in (None, "paragraph") and not has_txt:
        where = _show(local) if local is not None else f"the hub dataset {spec.path!r}"
        raise ConfigError(
            f"{key}.text_unit: {unit_given!r} splits .txt files, and {where} has none; remove text_unit"
        )

    txt_only = bool(files) and all(f.suffix.lower() == ".txt" for f in files)
    fmt_name = spec.format or ("text" if sample_kind == "document" or txt_only else "alpaca")
    kind = get_kind(sample_kind)  # preference / unpaired data: a conversation format + its columns
    fmt = _format(fmt_name, key, label, kind.BASE_KIND if kind else sample_kind)
    defaults = {**fmt.DEFAULT_COLUMNS, **kind.COLUMNS} if kind else fmt.DEFAULT_COLUMNS
    columns = _merge(fmt_name, "columns", defaults, spec.columns, key)
    tags = _merge(fmt_name, "tags", FORMATS.hook(fmt, "DEFAULT_TAGS"), spec.tags, key)
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
    if has_txt and spec.text_unit != "paragraph":
        settings.append(spec.text_unit)
    digest.update(json.dumps(settings, sort_keys=True).encode())
    sources: Iterator[tuple[str, Rows, _Scan]]
    if local is None:
        digest.update(json.dumps(["hub", spec.path, spec.subset, spec.split]).encode())
        sources = iter([(spec.path, _hub_rows(spec, key, base_dir), _Scan())])
    else:
        scans = {f: _Scan() for f in files}
        sources = (
            (
                _show(f),
                _file_rows(f, f.relative_to(local).as_posix(), digest, scans[f], spec.text_unit),
                scans[f],
            )
            for f in files
        )

    tally = _Tally(key)
    budget = spec.max_samples
    for shown, rows, scan in sources:
        if budget is not None and budget <= 0:
            break
        batch = list(islice(rows, budget))  # reads the file, which fills in its scan
        budget = None if budget is None else budget - len(batch)
        _check_columns(batch, must, shown, key, fmt_name)
        _convert(batch, shown, scan, to_sample, tally)
    if not tally.samples:
        dropped = tally.dropped
        why = f"{dropped.total()} dropped: " + ", ".join(f"{r} x{n}" for r, n in dropped.most_common())
        tail = f"; first dropped: {next(iter(tally.first.values()))}" if tally.first else ""
        raise DataError(
            f"{key} ({label}): no usable samples after filtering ({why if dropped else 'the source has no rows'}){tail}"
        )
    return LoadedDataset(
        label=label,
        samples=tally.samples,
        dropped=tally.dropped,
        fingerprint=digest.hexdigest(),
        dropped_examples=tally.examples,
    )


def _convert(
    batch: list[tuple[str, dict]], shown: str, scan: _Scan, to_sample: Callable[[dict], Any], tally: _Tally
) -> None:
    """Convert and validate one file's rows into ``tally``; warn once if the file holds images."""
    media_rows, media = 0, set()
    for where, row in batch:
        found = _media(row, scan.placeholders)
        if found:
            media_rows, media = media_rows + 1, media | found
        try:
            if scan.surrogates and any(_LONE.search(s) for s in _strings(row)):
                raise RowError(
                    f"{LONE_SURROGATE}: a string holds half of a UTF-16 surrogate pair (a \\uD800-\\uDFFF "
                    "escape without its partner), which no tokenizer can encode; fix or remove that text"
                )
            sample = to_sample(row)
            sample.validate()
        except RowError as e:
            tally.drop(e, f"{shown} {where}")
            continue
        sample.origin = f"{shown} {where}"
        tally.samples.append(sample)
    if media_rows:
        kinds = sorted(media)
        columns = "/".join(f"'{k}s'" for k in kinds)
        columns = f"an {columns} column" if len(kinds) == 1 else f"{columns} columns"
        log.warning(
            f"{shown}: {media_rows} rows have {columns} or {'/'.join(f'<{k}>' for k in kinds)} placeholders; "
            f"this model reads text only, so the {'/'.join(k + 's' for k in kinds)} are ignored "
            "(vision-language models are not supported yet)"
        )


def _media(row: dict, placeholders: bool) -> set[str]:
    """The kinds of media (image, video, audio) a row holds: a non-empty column, or a placeholder."""
    found: set[str] = set()
    if not _MEDIA_COLUMNS.isdisjoint(row):
        found = {m for m in _MEDIA if row.get(m + "s")}
    if placeholders and len(found) < len(_MEDIA):
        found |= {m for s in _strings(row) for m in _MEDIA if f"<{m}>" in s}
    return found


def _strings(obj: Any) -> Iterator[str]:
    """Every string in a row (keys too), without recursion: rows may nest deeply."""
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, str):
            yield o
        elif isinstance(o, dict):
            stack.extend(o)
            stack.extend(o.values())
        elif isinstance(o, (list, tuple)):
            stack.extend(o)


def drop_reason(err: RowError) -> str:
    """The short reason a dropped row is counted under (see the module docstring)."""
    msg = str(err)
    head, sep, _ = msg.partition(": ")
    if sep and (len(head) <= 40 or head.startswith(MISSING)):
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
    for name, column in sorted(must.items()):
        if not batch or column in present:
            continue
        # also 'chosen' -> 'chosen_messages' (LLaMA-Factory v1), too long for difflib's cutoff
        close = (
            difflib.get_close_matches(column, present, n=1)
            or [p for p in present if p.startswith(f"{column}_")][:1]
        )
        hint, listed = (f"Did you mean {close[0]!r}? " if close else ""), ", ".join(present) or "(none)"
        raise DataError(
            f"{shown}: no column {column!r}, which format {fmt} reads as its {name!r} field; the file's "
            f"columns are: {listed}. {hint}Set {key}.columns.{name}: <your column>"
        )


def _show(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


# --- reading rows -----------------------------------------------------------------------------


def _file_rows(path: Path, name: str, digest: Any, scan: _Scan, text_unit: str = "paragraph") -> Rows:
    """Rows of one file; its name and bytes go into ``digest`` and what its text may hold into
    ``scan`` when it is read. A .txt file is split by ``text_unit``."""
    shown, suffix = _show(path), path.suffix.lower()
    try:
        digest.update(f"\0{name}\0{path.stat().st_size}\0".encode())
        if suffix == ".parquet":
            with path.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
        else:
            data = path.read_bytes()
    except OSError as e:
        raise DataError(
            f"{shown}: cannot be read ({e.strerror or e}); check that it is a readable file"
        ) from None
    if suffix == ".parquet":
        yield from _parquet_rows(path, shown)
        return
    digest.update(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"{shown} line {line}: not UTF-8 text ({e.reason}); save the file as UTF-8") from None
    scan.placeholders = any(f"<{m}>" in text for m in _MEDIA)
    if suffix == ".csv":
        yield from _csv_rows(text, shown)
    elif suffix == ".txt":
        yield from _txt_rows(text, text_unit)
    else:
        scan.surrogates = _SURROGATE_ESCAPE.search(text) is not None
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
    first_line = text.count("\n", 0, start) + 1
    newline = text.find("\n", start)
    try:
        json.loads(text[start : newline if newline >= 0 else len(text)])
        one_per_line = True
    except json.JSONDecodeError:
        one_per_line = False
    except (RecursionError, ValueError) as e:
        raise _json_error(shown, f"line {first_line}", e, fix) from None
    if not one_per_line:  # one object spread over lines, or invalid JSON: json's own error says where
        where = f"line {first_line}"
        yield where, _object(_loads(text, shown, fix, where), shown, where)
        return
    for n, line in enumerate(text.split("\n"), 1):
        if line.strip():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(
                    f"{shown} line {n}: invalid JSON ({e.msg}: column {e.colno}); {fix}"
                ) from None
            except (RecursionError, ValueError) as e:
                raise _json_error(shown, f"line {n}", e, fix) from None
            yield f"line {n}", _object(obj, shown, f"line {n}")


def _json_array(text: str, shown: str, start: int) -> Rows:
    """Items of a top-level array, each with the line it starts on (json.loads gives no positions)."""
    decoder = json.JSONDecoder()
    fix = "fix the JSON there"
    pos = _WS.match(text, start + 1).end()
    line, counted = 1 + text.count("\n", 0, pos), pos
    if text.startswith("]", pos):
        if _WS.match(text, pos + 1).end() != len(text):
            _loads(text, shown, fix, "line 1")  # raises: something follows the array
        return
    previous, n = 0, 0
    while True:
        line, counted = line + text.count("\n", counted, pos), pos
        n += 1
        # items sharing a line (an array written on one line) are told apart by their number
        where = f"line {line}" if line != previous else f"line {line}, row {n}"
        previous = line
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise _invalid_json(shown, e, fix) from None
        except (RecursionError, ValueError) as e:
            raise _json_error(shown, where, e, fix) from None
        yield where, _object(obj, shown, where)
        pos = _WS.match(text, end).end()
        if text.startswith(",", pos):
            pos = _WS.match(text, pos + 1).end()
        elif text.startswith("]", pos) and _WS.match(text, pos + 1).end() == len(text):
            return
        else:
            _loads(text, shown, fix, where)  # raises with json's message and position
            raise DataError(f"{shown}: invalid JSON after line {line}")


def _loads(text: str, shown: str, fix: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise _invalid_json(shown, e, fix) from None
    except (RecursionError, ValueError) as e:
        raise _json_error(shown, where, e, fix) from None


def _invalid_json(shown: str, e: json.JSONDecodeError, fix: str) -> DataError:
    return DataError(f"{shown} line {e.lineno}: invalid JSON ({e.msg}: column {e.colno}); {fix}")


def _json_error(shown: str, where: str, e: Exception, fix: str) -> DataError:
    """The DataError for what json raises besides JSONDecodeError, for the row starting at ``where``."""
    if isinstance(e, RecursionError):
        return DataError(
            f"{shown} {where}: JSON nested too deeply to read (lists or objects about "
            f"{sys.getrecursionlimit()} levels deep); {fix}"
        )
    return DataError(f"{shown} {where}: invalid JSON ({str(e).split(':')[0]}); {fix}")


def _object(obj: Any, shown: str, where: str) -> dict:
    if not isinstance(obj, dict):
        raise DataError(
            f"{shown} {where}: expected a JSON object (one row, its keys the columns), got a {type(obj).__name__}"
        )
    return obj


def _csv_rows(text: str, shown: str) -> Rows:
    # Long answers exceed csv's default 128 KiB cell limit.
    csv.field_size_limit(2**31 - 1)
    # strict: a quote left open or closed mid-cell is an error, not a cell that swallows later rows
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        header = next(reader, None)
        twice = sorted({c for c in header or [] if c and header.count(c) > 1})
        if twice:
            raise DataError(
                f"{shown} line 1: the header names the column {twice[0]!r} twice; rename one of them"
            )
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
            # short rows: cells missing; an empty cell is null, as pandas reads it
            yield f"line {start}", {h: c if c else None for h, c in zip(header, cells, strict=False)}
    except csv.Error as e:
        raise _csv_error(shown, start, reader.line_num, e) from None


def _csv_error(shown: str, start: int, at: int, e: csv.Error) -> DataError:
    fix = 'fix the quoting (a quote inside a quoted cell is written twice: "")'
    if "unexpected end of data" in str(e):
        return DataError(
            f"{shown} line {start}: unterminated quote: a quoted cell in the row starting here runs to the "
            f"end of the file; {fix}"
        )
    if "expected after" in str(e):
        return DataError(
            f"{shown} line {start}: a quote in the row starting here ends a cell that goes on (line {at}: "
            f"{e}); {fix}"
        )
    return DataError(f"{shown} line {at}: invalid CSV ({e})")


def _txt_rows(text: str, unit: str = "paragraph") -> Rows:
    """Documents of a .txt file: each paragraph (lines between blank ones), each non-blank line, or
    the whole file less its leading and trailing blank lines."""
    lines = [line.rstrip("\r") for line in text.split("\n")]
    if unit == "line":
        for n, line in enumerate(lines, 1):
            if line.strip():
                yield f"line {n}", {"text": line}
        return
    if unit == "file":
        filled = [n for n, line in enumerate(lines) if line.strip()]
        if filled:
            yield f"line {filled[0] + 1}", {"text": "\n".join(lines[filled[0] : filled[-1] + 1])}
        return
    block: list[str] = []
    start = 0
    for n, line in enumerate(lines, 1):
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
    batches = pf.iter_batches(batch_size=1024)
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError) as e:
            raise DataError(
                f"{shown} row {n + 1}: the Parquet data cannot be read ({e}); rewrite the file"
            ) from None
        if batch is None:
            return
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
