"""The content-addressed cache of teacher calls (`tuneforge data generate`): a call's key is the
hash of everything that decides its reply (the teacher, the messages, n, temperature, top_p,
max_tokens, seed), so a rerun, or a run resumed after a crash, asks the teacher nothing it asked
before. Each answered call is appended to ``calls.jsonl`` and flushed at once: a crash loses at
most the calls in flight, and a partial last line (a kill mid-write) is skipped on reading."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path


def call_key(identity: dict, messages: list[dict], params: dict) -> str:
    text = json.dumps({"teacher": identity, "messages": messages, "params": params}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_root(cache_dir: str | None) -> Path:
    if cache_dir:
        return Path(cache_dir).expanduser()
    base = os.environ.get("TUNEFORGE_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "tuneforge") / "generate"


class CallCache:
    def __init__(self, folder: Path):
        self.path = Path(folder) / "calls.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._entries: dict[str, dict] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the partial line of a killed run
                if isinstance(entry, dict) and "key" in entry:
                    self._entries[entry["key"]] = entry

    def get(self, key: str) -> dict | None:
        return self._entries.get(key)

    def put(self, key: str, texts: list[str], usage: dict) -> None:
        entry = {"key": key, "texts": texts, "usage": usage}
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            self._entries[key] = entry
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line)
                f.flush()

    def __len__(self) -> int:
        return len(self._entries)
