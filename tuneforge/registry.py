"""One registry mechanism for methods, templates, formats and stages.

A registry is bound to a package (e.g. ``tuneforge.data.formats``); every module in that package
is an entry whose key is the module's file name. Third-party entries come from the Python
entry-point group ``tuneforge.<kind>`` (name -> module). Misses raise a ConfigError that lists the
closest names.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from importlib.metadata import entry_points
from types import ModuleType

from tuneforge.errors import ConfigError


def did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if close:
        return f"did you mean {' or '.join(repr(c) for c in close)}?"
    return f"choose one of: {', '.join(sorted(choices))}"


class Registry:
    """Entries of one kind, keyed by the name users write."""

    def __init__(self, kind: str, package: str):
        self.kind = kind
        self.package = package
        self._entries: dict[str, ModuleType] | None = None

    def _load(self) -> dict[str, ModuleType]:
        if self._entries is None:
            entries: dict[str, ModuleType] = {}
            pkg = importlib.import_module(self.package)
            for info in pkgutil.iter_modules(pkg.__path__):
                if info.name.startswith("_"):
                    continue
                entries[info.name] = importlib.import_module(f"{self.package}.{info.name}")
            for ep in entry_points(group=f"tuneforge.{self.kind}"):
                if ep.name in entries:
                    raise ConfigError(
                        f"{self.kind} {ep.name!r} from package {ep.dist.name if ep.dist else '?'} "
                        "clashes with a built-in entry of the same name; rename the entry point"
                    )
                entries[ep.name] = ep.load()
            self._entries = entries
        return self._entries

    def names(self) -> list[str]:
        return sorted(self._load())

    def get(self, name: str) -> ModuleType:
        entries = self._load()
        if name not in entries:
            raise ConfigError(f"unknown {self.kind} {name!r}: {did_you_mean(name, list(entries))}")
        return entries[name]

    def modules(self) -> list[ModuleType]:
        entries = self._load()
        return [entries[n] for n in sorted(entries)]

    def __contains__(self, name: str) -> bool:
        return name in self._load()
