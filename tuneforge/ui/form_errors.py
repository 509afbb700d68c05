"""The New-run form's validation: the raw config the form sends back (`tuneforge.ui.form.raw_from_form`)
checked exactly as the CLI checks a file (`tuneforge.config.load`: renamed keys mapped first, the
same one-line messages), each message put by the input it is about."""

from __future__ import annotations

import copy

from pydantic import ValidationError

from tuneforge.config.deprecations import upgrade
from tuneforge.config.load import _describe, _is_union_tag
from tuneforge.config.schema import Config
from tuneforge.errors import ConfigError
from tuneforge.ui.form import FormSection, _layout


def errors_by_field(raw: dict, source: str = "form") -> tuple[Config | None, dict[str, str], list[str]]:
    """Validate ``raw`` as the CLI does: ``(config, {}, [])``, or ``(None, {dotted key: message},
    [messages for no one input])``, the messages being the CLI's own one-liners. An error inside a
    list item (``data.datasets.0.path``) goes to the list's input; an unknown key, a renamed or
    removed key, or a check across several fields goes to the general list."""
    try:
        upgraded = upgrade(copy.deepcopy(raw), source, quiet=True)
    except ConfigError as e:
        return None, {}, [_strip_source(str(e), source)]
    layout = _layout(upgraded)
    keys = {spec.key for _, _, specs in layout for spec in specs}
    for spec in (s for _, _, specs in layout for s in specs if s.required and "." in s.key):
        if isinstance(upgraded, dict) and spec.key.split(".")[0] not in upgraded:
            upgraded[spec.key.split(".")[0]] = {}  # "model.name_or_path is required", not "model is ..."
    try:
        return Config.model_validate(upgraded), {}, []
    except ValidationError as e:
        errors = e.errors()
    by_field: dict[str, str] = {}
    general: list[str] = []
    for err in errors:
        message = _describe(err, upgraded)
        key = _field_for(err, keys)
        if key is None:
            general.append(message)
        else:
            by_field[key] = f"{by_field[key]}; {message}" if key in by_field else message
    return None, by_field, general


def apply_errors(sections: list[FormSection], errors: dict[str, str]) -> None:
    """Set each field's ``error`` from `errors_by_field`'s dict (``None`` where it has none)."""
    for section in sections:
        for f in section.fields:
            f.error = errors.get(f.key)


def _field_for(err: dict, keys: set[str]) -> str | None:
    """The form input a pydantic error belongs to: its location without union tags, or the
    longest prefix of it that is an input (a list item's error goes to the list); None for none."""
    parts = [str(p) for p in err["loc"] if not _is_union_tag(p)]
    if err["type"] in ("union_tag_invalid", "union_tag_not_found") and ".".join([*parts, "name"]) in keys:
        return ".".join([*parts, "name"])
    for end in range(len(parts), 0, -1):
        key = ".".join(parts[:end])
        if key in keys:
            return key
    return None


def _strip_source(message: str, source: str) -> str:
    prefix = f"{source}: "
    return message[len(prefix) :] if message.startswith(prefix) else message
