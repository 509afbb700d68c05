"""The New-run page's form, generated from the config schema (`tuneforge.config.schema.Config`) so it
never drifts from the CLI: one section per top-level key, one input per leaf key, named by the same
dotted key a ``key=value`` override uses (``train.learning_rate``, ``method.r``).

``method`` and ``stage`` are tagged unions: their section starts with a ``method.name`` choice and
holds the fields of the selected choice only. Lists, dicts, lists of models (``data.datasets``,
``eval.tasks``) and mixed types are edited as YAML text. `raw_from_form` turns what the page sends
back into the raw config to write as the run's YAML (defaults left out); `tuneforge.ui.form_errors`
validates it as the CLI does and puts each message by its input.
"""

from __future__ import annotations

import copy
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from tuneforge.config.deprecations import upgrade
from tuneforge.config.reference import _is_list, _models
from tuneforge.config.schema import Config
from tuneforge.errors import ConfigError

__all__ = [
    "FormField",
    "FormSection",
    "form_sections",
    "form_values",
    "raw_from_form",
]


@dataclass
class FormField:
    """One input of the form."""

    key: str  # dotted key as in key=value overrides: "train.learning_rate", "method.r", "data.datasets"
    label: str  # the last part: "learning_rate"
    kind: str  # "bool" | "int" | "float" | "str" | "choice" | "yaml"
    value: str  # what the input shows now, as text ("" for None)
    default: str  # the default as text, same rules ("" when required or None)
    help: str  # the field's description
    choices: list[str]  # for "choice" and "bool": the texts to pick from ("" first where None is allowed)
    required: bool
    error: str | None = None  # set by tuneforge.ui.form_errors.apply_errors


@dataclass
class FormSection:
    """One top-level key of the config (``train``, ``method``, ...) and its inputs."""

    name: str
    help: str
    fields: list[FormField]


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_REQUIRED = _Unset()  # the default of a required field (or one whose default cannot be computed)


@dataclass
class _Spec:
    """What the schema says about one input: enough to show a value and to parse one back."""

    key: str
    kind: str
    help: str
    required: bool
    nullable: bool
    default: Any
    literals: dict[str, Any] = field(default_factory=dict)  # choice text -> the Literal's value
    union_tag: bool = False  # `method.name` / `stage.name`


def form_sections(raw: dict) -> list[FormSection]:
    """The form for a (possibly partial) raw config: values from ``raw`` where set, else defaults."""
    raw = _upgraded(raw)
    sections = []
    for name, help_text, specs in _layout(raw):
        sections.append(FormSection(name, help_text, [_form_field(spec, raw) for spec in specs]))
    return sections


def form_values(sections: list[FormSection]) -> dict[str, str]:
    """What the page would send back unchanged: ``{key: value}`` for every input."""
    return {f.key: f.value for section in sections for f in section.fields}


def raw_from_form(form: dict[str, str]) -> dict:
    """The raw config for what the page sent (text by dotted key; a missing key was not sent): values
    parsed by the field's kind, defaults left out, required keys and ``method.name``/``stage.name``
    always kept. A value that does not parse stays text, and a key the schema lacks is kept at its
    dotted place, so validation reports them against their key."""
    selected = {name: form.get(f"{name}.name") for name in _union_sections()}
    out: dict = {}
    known: set[str] = set()
    for _, _, specs in _layout_for(selected):
        for spec in specs:
            known.add(spec.key)
            if spec.union_tag:
                _put(out, spec.key, form.get(spec.key, spec.default))
            elif spec.key in form:
                keep, value = _parse(spec, form[spec.key])
                if keep:
                    _put(out, spec.key, value)
                elif spec.required:  # left empty: its section stays, so validation names the key
                    _put(out, spec.key.rpartition(".")[0], {}, merge=True)
    for key, text in form.items():
        if key not in known:
            _put(out, key, _loose(text))
    return out


# --- the schema's layout ------------------------------------------------------------------------


def _union_sections() -> list[str]:
    return [
        name
        for name, info in Config.model_fields.items()
        if len(_models(info.annotation)) > 1 and not _is_list(info.annotation)
    ]


def _layout(raw: dict) -> list[tuple[str, str, list[_Spec]]]:
    selected = {}
    for name in _union_sections():
        node = raw.get(name) if isinstance(raw, dict) else None
        selected[name] = node.get("name") if isinstance(node, dict) else None
    return _layout_for(selected)


def _layout_for(selected: dict[str, Any]) -> list[tuple[str, str, list[_Spec]]]:
    """(section, help, specs) for every top-level key but config_version; ``selected`` names the
    choice of each tagged union (None: its default)."""
    out = []
    for name, info in Config.model_fields.items():
        if name == "config_version":
            continue  # kept at its default
        sub = _models(info.annotation)
        if len(sub) > 1 and not _is_list(info.annotation):
            specs = _union_specs(name, info, sub, selected.get(name))
        elif len(sub) == 1 and not _is_list(info.annotation):
            specs = _model_specs(sub[0], f"{name}.")
        else:
            specs = [_leaf_spec(name, info)]
        out.append((name, info.description or "", specs))
    return out


def _union_specs(name: str, info: FieldInfo, choices: list[type[BaseModel]], tag: Any) -> list[_Spec]:
    tags = {m.model_fields["name"].default: m for m in choices}
    default = _default(info)
    default_tag = getattr(default, "name", _REQUIRED)
    spec = _Spec(
        key=f"{name}.name",
        kind="choice",
        help=info.description or "",
        required=False,
        nullable=False,
        default=default_tag,
        literals={t: t for t in tags},
        union_tag=True,
    )
    chosen = tags.get(default_tag if tag is None else tag) if isinstance(tag, str | None) else None
    rest = [s for s in _model_specs(chosen, f"{name}.") if s.key != f"{name}.name"] if chosen else []
    return [spec, *rest]


def _model_specs(model: type[BaseModel], prefix: str) -> list[_Spec]:
    specs = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            specs.extend(_model_specs(ann, f"{prefix}{name}."))  # a nested section: dotted keys
        else:
            specs.append(_leaf_spec(f"{prefix}{name}", info))
    return specs


def _leaf_spec(key: str, info: FieldInfo) -> _Spec:
    kind, nullable, literals = _kind(info.annotation)
    required = info.is_required()
    return _Spec(
        key=key,
        kind=kind,
        help=info.description or "",
        required=required,
        nullable=nullable,
        default=_REQUIRED if required else _default(info),
        literals=literals,
    )


def _kind(annotation: Any) -> tuple[str, bool, dict[str, Any]]:
    """(kind, whether None is allowed, {text: value} of a Literal)."""
    args = [_bare(a) for a in _union_args(_bare(annotation))]
    nullable = type(None) in args
    rest = [a for a in args if a is not type(None)]
    if rest and all(typing.get_origin(a) is Literal for a in rest):
        values = [v for a in rest for v in typing.get_args(a)]
        return "choice", nullable, {_scalar_text(v): v for v in values}
    if len(rest) == 1 and rest[0] in (bool, int, float, str):
        return rest[0].__name__, nullable, {}
    return "yaml", nullable, {}


def _bare(annotation: Any) -> Any:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _union_args(annotation: Any) -> tuple:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _default(info: FieldInfo) -> Any:
    try:
        return info.get_default(call_default_factory=True, validated_data={})
    except Exception:  # a factory that needs other fields' values
        return _REQUIRED


# --- values as text and back ------------------------------------------------------------------


def _form_field(spec: _Spec, raw: dict) -> FormField:
    found, value = _lookup(raw, spec.key.split("."))
    if not found:
        value = None if spec.default is _REQUIRED else spec.default
    if spec.kind == "bool":
        choices = ["true", "false"]
    else:
        choices = list(spec.literals) if spec.kind == "choice" else []
    if choices and spec.nullable:
        choices = ["", *choices]
    return FormField(
        key=spec.key,
        label=spec.key.rsplit(".", 1)[-1],
        kind=spec.kind,
        value=_text(value, spec),
        default="" if spec.default is _REQUIRED else _text(spec.default, spec),
        help=spec.help,
        choices=choices,
        required=spec.required,
    )


def _text(value: Any, spec: _Spec) -> str:
    if value is None or value is _REQUIRED:
        return ""
    if spec.kind == "yaml":
        if isinstance(value, list | dict | tuple) and not value and _empty(spec.default):
            return ""  # the same as leaving it out
        return _dump(value)
    if spec.kind == "str" and value == "" and spec.nullable:
        return "''"  # the empty string, as opposed to None
    return _scalar_text(value)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _dump(value: Any) -> str:
    text = yaml.safe_dump(_plain(value), sort_keys=False, allow_unicode=True)
    if text.endswith("\n...\n"):  # a scalar document
        text = text[: -len("...\n")]
    return text.rstrip("\n")


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _empty(default: Any) -> bool:
    return (
        default is None or default is _REQUIRED or (isinstance(default, list | dict | tuple) and not default)
    )


def _parse(spec: _Spec, text: str) -> tuple[bool, Any]:
    """(whether to write the key, its value) for one input's text."""
    if text == "":
        if spec.nullable:
            value: Any = None
        elif spec.required or spec.kind == "yaml":
            return False, None  # left empty: the default, or "is required" from validation
        else:
            value = ""  # a str's empty value; for other kinds validation reports it
    elif spec.kind == "str" and spec.nullable and text in ("''", '""'):
        value = ""
    else:
        value = _parse_text(spec, text)
    if spec.required or spec.default is _REQUIRED:
        return True, value
    return not _same(value, spec.default), value


def _parse_text(spec: _Spec, text: str) -> Any:
    if spec.kind == "bool":
        return {"true": True, "false": False}.get(text.strip().lower(), text)
    if spec.kind in ("int", "float"):
        for parse in (int, float) if spec.kind == "int" else (float,):
            try:
                return parse(text)
            except ValueError:
                pass
        return text
    if spec.kind == "choice":
        return spec.literals.get(text, text)
    if spec.kind == "yaml":
        return _loose(text)
    return text


def _loose(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _same(value: Any, default: Any) -> bool:
    return type(value) is type(default) and value == default


# --- raw dicts ----------------------------------------------------------------------------------


def _upgraded(raw: dict) -> dict:
    try:
        return upgrade(copy.deepcopy(raw), "form", quiet=True)
    except ConfigError:
        return copy.deepcopy(raw)  # form_errors.errors_by_field reports it


def _lookup(node: Any, path: list[str]) -> tuple[bool, Any]:
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _put(out: dict, key: str, value: Any, *, merge: bool = False) -> None:
    """Set ``value`` at dotted ``key`` (``merge``: a dict, merged into what is there)."""
    if not key:
        return
    parts = key.split(".")
    node = out
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            out[key] = value  # no dotted place for it: kept whole, validation names it
            return
        node = child
    if merge and isinstance(node.get(parts[-1]), dict):
        node[parts[-1]].update(value)
    else:
        node[parts[-1]] = value
