"""The config as plain data: YAML read and dotted `key=value` overrides applied, nothing validated.

Light on purpose (yaml only, no torch, peft or pydantic schema): `tuneforge.speed.huge_pages` reads
the config with it before anything heavy is imported; `tuneforge.config.load` validates the result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tuneforge.errors import ConfigError


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not key=value (e.g. train.learning_rate=2e-4)")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise ConfigError(f"override {text!r} has no key before '='")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_override(data: dict, path: list[str], value: Any) -> None:
    node: Any = data
    for i, part in enumerate(path[:-1]):
        where = ".".join(path[: i + 1])
        if isinstance(node, list):
            node = node[_list_index(part, node, where)]
            continue
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict | list):
            raise ConfigError(f"cannot set {'.'.join(path)}: {where} is a value, not a section")
    last = path[-1]
    if isinstance(node, list):
        node[_list_index(last, node, ".".join(path))] = value
    else:
        node[last] = value


def _list_index(part: str, node: list, where: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"{where}: use a list index between 0 and {len(node) - 1}")
    return int(part)


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: invalid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (model:, data:, ...)")
    return data


def read_raw(path: str | Path | None, overrides: list[str] | tuple = (), data: dict | None = None) -> dict:
    """The config file (or ``data``) with ``overrides`` applied, as a plain dict."""
    raw = read_yaml(path) if path is not None else dict(data or {})
    for text in overrides:
        apply_override(raw, *parse_override(text))
    return raw
