"""Per-class patching shared by `tuneforge.speed.swiglu` and `tuneforge.speed.rmsnorm`: a module's
forward is replaced only where its class passed a probe against its own forward (each class is
probed once), and the patch is an instance attribute, so removing it restores the class's forward."""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable

from torch import nn


def patch_where_exact(
    modules: Iterable[nn.Module], probe: Callable[[nn.Module], bool], forward: Callable
) -> int:
    """Bind ``forward`` to every module whose class ``probe`` accepts; returns how many."""
    verdict: dict[type, bool] = {}
    n = 0
    for module in modules:
        kind = type(module)
        if kind not in verdict:
            verdict[kind] = probe(module)
        if verdict[kind]:
            module.forward = types.MethodType(forward, module)
            n += 1
    return n


def unpatch(modules: Iterable[nn.Module]) -> None:
    for module in modules:
        module.__dict__.pop("forward", None)
