"""Step 1 of a run, before validation: renamed config keys mapped to their new names.

Every run folder's config.yaml records the ``config_version`` it was written with. A key renamed
since then is moved to its new place here, so old run folders keep working with chat, export, serve
and eval; a user's own file that still uses an old name gets a warning naming the new one. Light on
purpose (no pydantic, no torch): the `tuneforge train` process start reads the config with it.
"""

from __future__ import annotations

import logging
from typing import Any

from tuneforge.errors import ConfigError

log = logging.getLogger("tuneforge")

CONFIG_VERSION = 2

_SPEED = (
    "packing padding_free varlen_attention chunked_cross_entropy fused_lora_dropout fused_lora_output "
    "fused_swiglu fused_rmsnorm return_freed_memory keep_freed_memory huge_pages longest_first "
    "group_by_length activation_offloading"
).split()
_SCALE = {
    "nproc_per_node": "nproc_per_node",
    "nnodes": "nnodes",
    "node_rank": "node_rank",
    "master_addr": "master_addr",
    "master_port": "master_port",
    "distributed": "engine",
    "distributed_offload": "offload",
}

# (the config_version that made the change, old dotted key, new dotted key)
RENAMES: list[tuple[int, str, str]] = [
    *((2, f"train.{k}", f"speed.{k}") for k in _SPEED),
    *((2, f"train.{old}", f"scale.{new}") for old, new in _SCALE.items()),
]


def upgrade(raw: dict, source: str, *, quiet: bool = False) -> dict:
    """``raw`` (a config as plain data) with the keys renamed since its ``config_version`` (a file
    without one is from before the field) moved to their new names, with a warning each; a run
    folder's own older file (``quiet``) is upgraded silently."""
    version = raw.get("config_version", 1)  # a file without one predates the field
    if not isinstance(version, int):
        return raw  # validation reports it
    if version > CONFIG_VERSION:
        raise ConfigError(
            f"{source}: config_version {version} was written by a newer tuneforge (this one reads up to "
            f"{CONFIG_VERSION}); upgrade tuneforge"
        )
    for since, old, new in RENAMES:
        if since <= version:
            continue
        found, value = _pop(raw, old.split("."))
        if not found:
            continue
        if _get(raw, new.split("."))[0]:
            raise ConfigError(f"{source}: both {old} (the old name) and {new} are set; keep only {new}")
        _set(raw, new.split("."), value)
        if not quiet:
            log.warning("%s: %s is now %s (the old name still works; rename it)", source, old, new)
    return raw


def _get(node: Any, path: list[str]) -> tuple[bool, Any]:
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _pop(node: Any, path: list[str]) -> tuple[bool, Any]:
    found, parent = _get(node, path[:-1])
    if not found or not isinstance(parent, dict) or path[-1] not in parent:
        return False, None
    return True, parent.pop(path[-1])


def _set(node: dict, path: list[str], value: Any) -> None:
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[path[-1]] = value
