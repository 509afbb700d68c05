"""The config reference (`tuneforge config reference`, `tuneforge train --help`, docs/config.md)
and the JSON schema, generated from the schema's field descriptions so they never drift."""

from __future__ import annotations

import json
import typing

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from tuneforge.config.schema import Config


def _type_name(annotation) -> str:
    text = getattr(annotation, "__name__", None) if not typing.get_args(annotation) else None
    return text or str(annotation).replace("typing.", "")


def _default(field) -> str:
    if field.default is not PydanticUndefined:
        return repr(field.default)
    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:
            return ""
        return "" if isinstance(value, BaseModel) else repr(value)
    return "required"


def _rows(model: type[BaseModel], prefix: str) -> list[tuple[str, str, str, str]]:
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        sub = _models(field.annotation)
        if len(sub) == 1 and not _is_list(field.annotation):
            rows.extend(_rows(sub[0], key + "."))
        elif len(sub) > 1:  # a tagged union (or a list of one): one block per choice
            if _is_list(field.annotation):
                key += "[i]"
            rows.append(
                (
                    key,
                    "one of: " + ", ".join(m.model_fields["name"].default for m in sub),
                    "",
                    field.description or "",
                )
            )
            for m in sub:
                choice = m.model_fields["name"].default
                rows.extend(
                    (f"{key}.{k}", t, d, f"[{choice}] {desc}")
                    for k, t, d, desc in _rows(m, "")
                    if k != "name"
                )
        else:
            if sub:  # list of models
                rows.append((key, f"list of {sub[0].__name__}", _default(field), field.description or ""))
                rows.extend(_rows(sub[0], key + "[i]."))
                continue
            rows.append((key, _type_name(field.annotation), _default(field), field.description or ""))
    return rows


def _is_list(annotation) -> bool:
    return typing.get_origin(annotation) is list


def _models(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out = []
    for arg in typing.get_args(annotation):
        out.extend(_models(arg))
    return out


def reference_text() -> str:
    lines = [
        "# Config reference",
        "",
        "Generated from the schema (`tuneforge config reference`). Override any key on the command "
        "line as `key=value`.",
        "",
        "| key | type | default | description |",
        "|---|---|---|---|",
    ]
    for key, typ, default, desc in _rows(Config, ""):
        cells = [c.replace("|", "\\|") for c in (typ, default, desc)]
        lines.append(f"| `{key}` | {cells[0]} | {cells[1]} | {cells[2]} |")
    return "\n".join(lines)


def json_schema() -> str:
    return json.dumps(Config.model_json_schema(), indent=2)
