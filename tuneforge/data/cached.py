"""The cache of prepared data (`tuneforge.data.pipeline`, step 4 of a run): its statistics, where it
lives, reading it back (a damaged entry is removed with a warning and built again) and writing it
atomically. An entry's key is the content of its sources, so a hit is told with the asking run's
file names (`name_sources`)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from tuneforge.config.schema import Config
from tuneforge.errors import DataError

log = logging.getLogger("tuneforge.data.pipeline")


@dataclass
class DataStats:
    samples: int = 0
    tokens: int = 0
    trained_tokens: int = 0
    lengths: list[int] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    eval_samples: int = 0
    sources: list[str] = field(default_factory=list)
    # prompt data (grpo, ppo): nothing in it is trained on; the stage generates the completions
    prompts_only: bool = False
    # up to MAX_EXAMPLES dropped samples, "FILE line N: reason" (the first of each reason first)
    dropped_examples: list[str] = field(default_factory=list)
    prompts_shortened: int = 0  # training samples kept by data.prompt_truncation

    @property
    def trained_share(self) -> float:
        return self.trained_tokens / self.tokens if self.tokens else 0.0

    @property
    def trained_summary(self) -> str:
        """What the data trains, for the summary line: the share of trained tokens, or for prompt data that
        the completions are generated (a share of 0% would read as an all-masked dataset)."""
        return (
            "prompts only; completions are generated"
            if self.prompts_only
            else f"{self.trained_share:.1%} trained"
        )


@dataclass
class PreparedData:
    train: object  # datasets.Dataset with input_ids, labels (or a sample kind's columns)
    eval: object | None
    stats: DataStats
    fingerprint: str
    cache_hit: bool


def cache_root(cfg: Config) -> Path:
    """Where prepared data is cached; a path that exists but is not a folder is refused in one line."""
    given = cfg.data.cache_dir or os.environ.get("TUNEFORGE_CACHE")
    root = Path(given) if given else Path.home() / ".cache" / "tuneforge"
    key = "data.cache_dir" if cfg.data.cache_dir else "$TUNEFORGE_CACHE" if given else "the cache folder"
    for path in (root, root / "data"):
        if path.exists() and not path.is_dir():
            raise DataError(f"{key} {root}: {path} is a file, not a folder; point {key} at a folder")
    return root / "data"


def name_sources(stats: DataStats, labels: list[str]) -> None:
    """Cached statistics told with this run's source names (a dropped example starts with its file's)."""
    if len(stats.sources) == len(labels):
        renamed = dict(zip(stats.sources, labels, strict=True))
        stats.dropped_examples = [
            next((new + e[len(old) :] for old, new in renamed.items() if e.startswith(old)), e)
            for e in stats.dropped_examples
        ]
    stats.sources = labels


def load_cached(folder: Path, key: str) -> PreparedData | None:
    """The prepared data cached under ``folder``, or None when there is none. A damaged cache is
    removed with a warning and None returned, so the caller builds it again."""
    import datasets

    if not folder.is_dir():
        return None
    try:
        stats = read_stats(folder / "stats.json")
        train = datasets.load_from_disk(str(folder / "train"))
        ev = datasets.load_from_disk(str(folder / "eval")) if (folder / "eval").is_dir() else None
        what = _mismatch(stats, train, ev)
    # the cache only saves time, so anything that stops reading it means "build it again"
    except Exception as e:
        what = f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
    if what is None:
        return PreparedData(train, ev, stats, key, cache_hit=True)
    log.warning(f"cached data in {folder} is damaged ({what}); rebuilding")
    shutil.rmtree(folder, ignore_errors=True)
    return None


def read_stats(path: Path) -> DataStats:
    """A cache's stats.json; fields it lacks (written by an older version) take their defaults."""
    if not path.is_file():
        raise FileNotFoundError(f"{path.name} is missing")
    raw = json.loads(path.read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path.name} holds a {type(raw).__name__}, not an object")
    return DataStats(**{f.name: raw[f.name] for f in fields(DataStats) if f.name in raw})


def _mismatch(stats: DataStats, train, ev) -> str | None:
    """How the cached rows disagree with their stats (a file cut at a record boundary reads fine)."""
    if len(train) != stats.samples:
        return f"train has {len(train)} rows, stats.json says {stats.samples!r}"
    if (len(ev) if ev is not None else 0) != stats.eval_samples:
        return f"eval has {len(ev) if ev is not None else 'no'} rows, stats.json says {stats.eval_samples!r}"
    return None


def write_cache(folder: Path, train, ev, stats: DataStats) -> None:
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
    except OSError as e:
        raise DataError(
            f"cannot write the data cache in {folder.parent} ({e.strerror}); set data.cache_dir to a "
            "writable folder"
        ) from None
    train.save_to_disk(str(tmp / "train"))
    if ev is not None:
        ev.save_to_disk(str(tmp / "eval"))
    (tmp / "stats.json").write_text(json.dumps(asdict(stats)))
    try:
        os.replace(tmp, folder)
    except OSError:  # another process wrote the same key first; theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)
