"""What a `tuneforge` command shows: tuneforge's own lines and real problems on the console; the
rest in a log file, or on the console too with ``--verbose``. `tuneforge.cli.main` opens a `session`
around each command and undoes it after, so `main` called inside another program leaves that
program's logging, warnings and progress bars as it found them.

Kept off the console: other libraries' INFO records, the `NOISE` below (each a notice a user can do
nothing about, matched by where it comes from and what it says; any other warning is shown), and
the weight-loading and dataset-saving progress bars of transformers and datasets (`quiet_libraries`;
the training progress bar and download bars stay). Everything logged, shown or not, goes to the log
file: RUN_DIR/log.txt for a training run (`keep_log_in`), else $TUNEFORGE_CACHE/logs/VERB.log.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import sys
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

LOG_NAME = "log.txt"  # in a run folder
_HEAD, _TAIL = 1000, 4000  # lines of a long log kept from its start and its end


@dataclass(frozen=True)
class Noise:
    """Records of ``logger`` (or a logger under it) whose message matches ``pattern``; warnings
    are records of "py.warnings" that read "FILE:LINE: Category: message"."""

    logger: str
    pattern: str
    why: str

    def matches(self, record: logging.LogRecord) -> bool:
        name = record.name
        return (name == self.logger or name.startswith(self.logger + ".")) and bool(
            re.search(self.pattern, record.getMessage())
        )


NOISE = (
    Noise(
        "bitsandbytes",
        r"^Failed to load CPU gemm_4bit_forward from kernels-community",
        "on CPUs with AVX512-BF16 bitsandbytes tries an optional hub kernel for 4-bit matmuls at import "
        "and, without the `kernels` package, uses its own",
    ),
    Noise(
        "py.warnings",
        r"transformers/modeling_utils\.py:\d+: FutureWarning: `is_gradient_checkpointing` is deprecated",
        "peft reads the model's property under its old name when it wraps a model",
    ),
)


@dataclass
class _Session:
    verb: str
    verbose: bool
    argv: list[str]
    started: str = field(default_factory=lambda: dt.datetime.now().astimezone().isoformat(timespec="seconds"))
    run_log: Path | None = None
    head: list[str] = field(default_factory=list)
    tail: deque = field(default_factory=lambda: deque(maxlen=_TAIL))
    dropped: int = 0
    undo: list[Callable[[], None]] = field(default_factory=list)

    def keep(self, line: str) -> None:
        if len(self.head) < _HEAD:
            self.head.append(line)
            return
        if len(self.tail) == self.tail.maxlen:
            self.dropped += 1
        self.tail.append(line)

    def shown(self, record: logging.LogRecord) -> bool:
        if self.verbose or record.name == "tuneforge" or record.name.startswith("tuneforge."):
            return True
        return record.levelno >= logging.WARNING and not any(n.matches(record) for n in NOISE)

    def write_log(self) -> None:
        if not self.head or {"-h", "--help"} & set(self.argv):  # help keeps the verb's last log
            return
        lines = [
            *self.head,
            *([f"... {self.dropped} lines left out ..."] if self.dropped else []),
            *self.tail,
        ]
        header = f"== {self.started} tuneforge {' '.join(self.argv)}"
        run_log = self.run_log
        path = run_log or _cache() / "logs" / f"{self.verb}.log"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # a run folder's log grows with each resumed session; the cache keeps a verb's latest
            with path.open("a" if run_log else "w", encoding="utf-8") as f:
                f.write("\n".join([header, *lines]) + "\n")
        except OSError:
            pass  # a log that cannot be written never fails the command


_SESSIONS: list[_Session] = []


class _Console(logging.StreamHandler):
    """stderr as it is when a record comes (a test's capture, a notebook's redirection)."""

    def __init__(self, session: _Session):
        super().__init__()
        self.addFilter(session.shown)
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _Keep(logging.Handler):
    def __init__(self, session: _Session):
        super().__init__(logging.INFO)
        self.session = session
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.session.keep(self.format(record))
        except Exception:
            self.handleError(record)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """warnings.showwarning: one record of "py.warnings", first line only (no source line)."""
    text = f"{filename}:{lineno}: {category.__name__}: {message}"
    logging.getLogger("py.warnings").warning(text)


@contextmanager
def session(verb: str, verbose: bool, argv: list[str]) -> Iterator[_Session]:
    """Console and log file for one command (``verb``; ``argv`` goes into the log's header)."""
    s = _Session(verb if verb.isidentifier() else "tuneforge", verbose, list(argv))
    root = logging.getLogger()
    level, handlers = root.level, [_Console(s), _Keep(s)]
    showwarning = warnings.showwarning
    root.setLevel(logging.INFO)
    for h in handlers:
        root.addHandler(h)
    warnings.showwarning = _show_warning
    _SESSIONS.append(s)
    try:
        yield s
    finally:
        _SESSIONS.remove(s)
        for undo in reversed(s.undo):
            undo()
        warnings.showwarning = showwarning
        for h in handlers:
            root.removeHandler(h)
        root.setLevel(level)
        s.write_log()


def set_verbose(verbose: bool) -> None:
    """The parsed ``--verbose`` (argparse also takes an abbreviation such as ``--verb``)."""
    if _SESSIONS:
        _SESSIONS[-1].verbose = verbose


def keep_log_in(run_dir: Path) -> None:
    """Write this command's log into the run folder ``run_dir`` (RUN_DIR/log.txt) instead of the cache."""
    if _SESSIONS:
        _SESSIONS[-1].run_log = Path(run_dir) / LOG_NAME


def quiet_libraries() -> None:
    """For the verbs that load models: transformers' and datasets' records through the session's
    handlers (not their own stderr handlers), from WARNING up unless their *_VERBOSITY variable
    says otherwise, and their progress bars for loading weights and saving datasets off unless
    ``--verbose`` (or the user's HF_* variables decide)."""
    if not _SESSIONS:
        return
    s = _SESSIONS[-1]
    import datasets
    import huggingface_hub.utils as hub
    import transformers

    tf = transformers.utils.logging
    for name in ("transformers", "datasets"):
        lg = logging.getLogger(name)
        before = (list(lg.handlers), lg.propagate, lg.level)
        s.undo.append(lambda lg=lg, before=before: _restore(lg, *before))
        lg.handlers, lg.propagate = [], True
    # their INFO is every config and file they read: not shown even with --verbose, unless asked for
    for name, variable in (("transformers", "TRANSFORMERS_VERBOSITY"), ("datasets", "DATASETS_VERBOSITY")):
        if variable not in os.environ:
            logging.getLogger(name).setLevel(logging.WARNING)
    if s.verbose:
        return
    if "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ and tf.is_progress_bar_enabled():
        downloads = not hub.are_progress_bars_disabled()
        tf.disable_progress_bar()  # transformers' own bars (weights loaded, shards written), and the hub's
        if downloads:
            hub.enable_progress_bars()
        s.undo.append(lambda: (tf.enable_progress_bar(), downloads or hub.disable_progress_bars()))
    bars = datasets.utils
    if "HF_DATASETS_DISABLE_PROGRESS_BARS" not in os.environ and not bars.are_progress_bars_disabled():
        bars.disable_progress_bars()
        s.undo.append(bars.enable_progress_bars)


def _restore(lg: logging.Logger, handlers: list, propagate: bool, level: int) -> None:
    lg.handlers, lg.propagate = handlers, propagate
    lg.setLevel(level)


def _cache() -> Path:
    return Path(os.environ.get("TUNEFORGE_CACHE") or "~/.cache/tuneforge").expanduser()
