"""Step 1 of a run: read the YAML, apply dotted `key=value` overrides, validate.

Errors come back as one-line ConfigErrors that name the key (``train.learning_rate``), what is
wrong, and the fix; unknown keys get the closest valid name.
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from tuneforge.config.deprecations import upgrade
from tuneforge.config.raw import read_raw
from tuneforge.config.schema import Config
from tuneforge.errors import ConfigError

__all__ = ["load_config", "validate", "validate_as"]


def load_config(
    path: str | Path | None, overrides: list[str] | tuple = (), data: dict | None = None
) -> Config:
    """Read a config file (or a dict), apply overrides and return the validated Config."""
    raw = read_raw(path, overrides, data)
    return validate(raw, source=str(path) if path else "config")


def validate(raw: dict, source: str = "config", *, run_folder: bool = False) -> Config:
    """The validated Config; renamed keys are mapped first (`tuneforge.config.deprecations`), silently
    for a run folder's own config.yaml (``run_folder``)."""
    raw = upgrade(copy.deepcopy(raw), source, quiet=run_folder)
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"{source}: " + "; ".join(_describe(err, raw) for err in e.errors())) from None


def validate_as(schema: type[BaseModel], raw: dict, source: str):
    """``raw`` validated as another tuneforge file's schema (a data generation recipe), with the same
    one-line messages and did-you-mean as a train config."""
    try:
        return schema.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(
            f"{source}: " + "; ".join(_describe(err, raw, schema) for err in e.errors())
        ) from None


def _describe(err: dict, raw: dict, schema: type[BaseModel] = Config) -> str:
    loc = [p for p in err["loc"] if not _is_union_tag(p)]
    key = ".".join(str(p) for p in loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        valid = _valid_keys(loc[:-1], raw, schema)
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
        hint = (
            f"did you mean {'.'.join([*map(str, loc[:-1]), close[0]])}?"
            if close
            else (f"valid keys here: {', '.join(valid)}")
        )
        return f"unknown key {key}: {hint}"
    if kind == "missing":
        return f"{key} is required"
    if kind == "union_tag_not_found":
        example = {"method": "lora", "stage": "sft"}.get(str(loc[0]) if loc else "", "NAME")
        return f"{key}.name is required: say which one, e.g. {key}.name={example} (`tuneforge ls` lists them)"
    if kind == "union_tag_invalid":
        from tuneforge.registry import did_you_mean

        tag, expected = err["ctx"]["tag"], [t.strip(" '") for t in err["ctx"]["expected_tags"].split(",")]
        return f"{key}.name: unknown {key} {tag!r}: {did_you_mean(tag, expected)}"
    value = err.get("input")
    shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    return f"{key} = {shown}: {err['msg']}"


def _is_union_tag(part: Any) -> bool:
    # pydantic inserts the discriminator value (e.g. 'lora') into error locations of tagged unions
    from tuneforge.eval.tasks import TASKS
    from tuneforge.generate.recipes import RECIPES
    from tuneforge.methods import METHODS
    from tuneforge.stages import STAGES

    return (
        isinstance(part, str)
        and (part in METHODS or part in STAGES or part in TASKS or part in RECIPES)
        and part not in Config.model_fields
    )


def _valid_keys(loc: list, raw: dict, schema: type[BaseModel] = Config) -> list[str]:
    """Field names of the model found at `loc` (following tagged unions by their `name`)."""
    model: type[BaseModel] | None = schema
    node: Any = raw
    parent: tuple[type[BaseModel], Any] | None = None
    for part in loc:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        if isinstance(part, int) and parent is not None and isinstance(node, dict):
            model = _field_model(*parent, node)  # an item of a list of a tagged union: pick by its `name`
            continue
        parent = (model, part) if model else None
        model = _field_model(model, part, node) if model else None
    return sorted(model.model_fields) if model else []


def _field_model(model: type[BaseModel], part: Any, node: Any) -> type[BaseModel] | None:
    import typing

    if isinstance(part, int):
        return model  # list element: the list's item model was chosen at the previous step
    field = model.model_fields.get(str(part))
    if field is None:
        return None
    candidates = [field.annotation]
    seen: list[type[BaseModel]] = []
    while candidates:
        t = candidates.pop()
        if isinstance(t, type) and issubclass(t, BaseModel):
            seen.append(t)
        else:
            candidates.extend(typing.get_args(t))
    if len(seen) > 1 and isinstance(node, dict):  # a tagged union: pick by `name`
        for m in seen:
            if "name" in m.model_fields and m.model_fields["name"].default == node.get("name"):
                return m
    return seen[0] if seen else None
