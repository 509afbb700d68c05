"""Dataset registry files: a name users write as ``data.datasets[i].name`` -> a DatasetConfig.

Step 4 of a run, before `tuneforge.data.sources` reads anything. LLaMA-Factory's
``dataset_info.json`` works as it is (JSON, or the same shape in YAML)::

    {"alpaca_demo": {"file_name": "alpaca_demo.json"},
     "chat": {"file_name": "chat.json", "formatting": "sharegpt",
              "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
              "tags": {"role_tag": "from", "content_tag": "value"}},
     "web": {"hf_hub_url": "owner/name", "split": "train", "subset": "en", "num_samples": 1000}}

Keys: ``file_name`` (or ``path``; relative to the registry's folder), ``hf_hub_url`` /
``ms_hub_url`` / ``om_hub_url`` (loaded from the Hugging Face hub, in that order of preference),
``formatting`` (or ``format``: alpaca, sharegpt, openai, text or any installed format; default
alpaca), ``columns`` (LLaMA-Factory's names prompt/query/response map to alpaca's
instruction/input/output; our own field names work too), ``tags`` (sharegpt), ``split``,
``subset``, ``num_samples`` (read as ``max_samples``: the first N rows) and ``text_unit`` (how
.txt files split into documents; ``line``, LLaMA-Factory's way, unless the entry says
``paragraph`` or ``file``, where a path given directly defaults to ``paragraph``). For a stage that
trains on documents (pt), an alpaca entry reads its ``prompt`` column as the text, as
LLaMA-Factory does. Preference entries (``"ranking": true``, columns ``chosen`` / ``rejected``) and
KTO entries (column ``kto_tag``, read as ``label``) work with the stages that train on them
(`tuneforge.data.kinds`). Entries are checked when used, so a registry may hold entries
(multimodal, preference) that the current stage cannot train on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tuneforge.config.schema import DatasetConfig
from tuneforge.data.formats import FORMATS
from tuneforge.data.kinds import get_kind
from tuneforge.errors import ConfigError
from tuneforge.registry import did_you_mean

# LLaMA-Factory column names -> our field names, per format (names not listed are the same).
LF_COLUMNS: dict[str, dict[str, str]] = {
    "alpaca": {"prompt": "instruction", "query": "input", "response": "output"},
    "text": {"prompt": "text"},
}
_PREFERENCE = "preference data (ranking, chosen, rejected) needs a preference stage: stage.name: dpo (or rm, orpo, simpo)"
_KTO = "KTO data (kto_tag) needs stage.name: kto"
# columns a sample kind reads (tuneforge.data.kinds), and the stage to suggest when another reads them
_KIND_COLUMNS = {"chosen": ("preference", _PREFERENCE), "rejected": ("preference", _PREFERENCE),
                 "kto_tag": ("unpaired", _KTO), "label": ("unpaired", _KTO)}  # fmt: skip
_LF_KIND_ALIASES = {"kto_tag": "label"}
_UNSUPPORTED_COLUMNS = {
    "images": "multimodal data (images) is not supported yet",
    "videos": "multimodal data (videos) is not supported yet",
    "audios": "multimodal data (audios) is not supported yet",
}
_UNSUPPORTED_KEYS = {
    "script_url": "dataset loading scripts are not supported; point file_name at the data files",
    "cloud_file_name": "cloud storage is not supported; download the file and use file_name",
    "folder": "a folder inside a hub dataset is not supported; download it and use file_name",
}
_KEYS = ("file_name", "path", "hf_hub_url", "ms_hub_url", "om_hub_url", "formatting", "format",
         "columns", "tags", "split", "subset", "num_samples", "ranking", "text_unit")  # fmt: skip
_TEXT_UNITS = ("paragraph", "line", "file")
_HUB_KEYS = ("hf_hub_url", "ms_hub_url", "om_hub_url")
_OPENAI_TAGS = {"role_tag": ("role",), "content_tag": ("content",), "user_tag": ("user",),
                "assistant_tag": ("assistant",), "system_tag": ("system",),
                "observation_tag": ("tool", "observation"), "function_tag": None}  # fmt: skip


class DatasetRegistry:
    """The entries of one registry file, resolved on use."""

    def __init__(self, entries: dict[str, Any], path: Path):
        self.entries = entries
        self.path = path

    @classmethod
    def from_file(cls, path: str | Path) -> DatasetRegistry:
        path = Path(path).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"data.dataset_registry: {path} not found; give the path to your dataset_info.json "
                "(relative to the folder you run tuneforge in)"
            )
        text = path.read_text(encoding="utf-8-sig")
        if path.suffix.lower() in (".yaml", ".yml"):
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as e:
                raise ConfigError(
                    f"dataset registry {path}: invalid YAML ({' '.join(str(e).split())})"
                ) from None
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                raise ConfigError(
                    f"dataset registry {path} line {e.lineno}: invalid JSON ({e.msg}: column {e.colno})"
                ) from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(
                f"dataset registry {path}: expected a mapping of dataset names to entries, "
                f"got a {type(data).__name__}"
            )
        return cls(data, path)

    def names(self) -> list[str]:
        return sorted(self.entries)

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def resolve(
        self,
        name: str,
        index: int,
        *,
        format: str | None = None,
        sample_kind: str | None = None,
        section: str = "data.datasets",
    ) -> tuple[DatasetConfig, Path | None]:
        """The entry as a DatasetConfig with ``path`` set, and the folder its relative path starts
        from (None for hub datasets). ``format`` (the user's override) decides how the entry's
        columns are read; ``sample_kind`` picks the default format for entries without one."""
        key = f"{section}[{index}]"
        if name not in self.entries:
            choices = did_you_mean(name, self.names()) if self.entries else "it has no entries"
            raise ConfigError(f"{key}.name: {name!r} is not in the dataset registry {self.path}: {choices}")
        entry = self.entries[name]
        where = f"dataset registry {self.path}, entry {name!r}"
        if not isinstance(entry, dict):
            raise ConfigError(
                f"{where}: expected a mapping (file_name, formatting, columns, ...), got {entry!r}"
            )
        _check_keys(entry, where)
        if entry.get("ranking") and sample_kind != "preference":
            raise ConfigError(f"{where}: {_PREFERENCE}")

        written = entry.get("format") or entry.get("formatting") or "alpaca"
        if written not in FORMATS:
            raise ConfigError(
                f"{where}: unknown formatting {written!r}: {did_you_mean(written, FORMATS.names())}"
            )
        if format is not None and format not in FORMATS:
            raise ConfigError(
                f"{key}.format: unknown format {format!r}: {did_you_mean(format, FORMATS.names())}"
            )
        fmt = format or ("text" if written == "alpaca" and sample_kind == "document" else written)
        from_alpaca = written == "alpaca" and fmt == "text"  # an alpaca entry read as plain text

        hub = next((entry[k] for k in _HUB_KEYS if entry.get(k)), None)
        file_name = entry.get("file_name") or entry.get("path")
        if hub:
            path, base_dir = str(hub), None
        elif file_name:
            path, base_dir = str(file_name), self.path.parent
        else:
            raise ConfigError(
                f"{where}: give file_name (a file or folder next to the registry) or hf_hub_url"
            )

        num = entry.get("num_samples")
        if num is not None and (not isinstance(num, int) or isinstance(num, bool) or num <= 0):
            raise ConfigError(f"{where}: num_samples must be a whole number above 0, got {num!r}")
        spec = DatasetConfig(
            text_unit=_text_unit(entry, where),
            path=path,
            format=fmt,
            columns=_columns(entry.get("columns") or {}, fmt, from_alpaca, where, sample_kind),
            tags=_tags(entry.get("tags") or {}, fmt, where),
            split=str(entry.get("split") or "train"),
            subset=None if entry.get("subset") is None else str(entry["subset"]),
            max_samples=num,
        )
        return spec, base_dir


def resolve_entry(
    spec: DatasetConfig,
    index: int,
    registry: DatasetRegistry | None,
    *,
    sample_kind: str | None = None,
    section: str = "data.datasets",
) -> tuple[DatasetConfig, Path | None]:
    """``spec`` (which names a registry entry) as the entry's DatasetConfig, with what the user
    wrote in ``spec`` winning: its format, split, subset and max_samples replace the entry's, its
    columns and tags are laid over the entry's."""
    if registry is None:
        raise ConfigError(
            f"{section}[{index}].name: {spec.name!r} names a registry entry, but data.dataset_registry "
            "is not set; point it at your dataset_info.json, or give path: instead of name:"
        )
    assert spec.name is not None
    base, base_dir = registry.resolve(
        spec.name, index, format=spec.format, sample_kind=sample_kind, section=section
    )
    update = {f: getattr(spec, f) for f in spec.model_fields_set - {"name", "columns", "tags", "weight"}}
    update["columns"] = {**base.columns, **spec.columns}
    update["tags"] = {**base.tags, **spec.tags}
    return base.model_copy(update=update), base_dir


def _text_unit(entry: dict, where: str) -> str:
    """How the entry's .txt files split into documents: one per line, as LLaMA-Factory reads them,
    unless the entry says otherwise (files of other types ignore it)."""
    unit = entry.get("text_unit", "line")
    if unit not in _TEXT_UNITS:
        raise ConfigError(f"{where}: text_unit must be one of {', '.join(_TEXT_UNITS)}, got {unit!r}")
    file_name = str(entry.get("file_name") or entry.get("path") or "")
    suffix = Path(file_name).suffix.lower()
    if "text_unit" in entry and (not file_name or (suffix and suffix != ".txt")):
        what = f"{file_name!r} is not one" if file_name else "a hub dataset has none"
        raise ConfigError(f"{where}: text_unit splits .txt files, and {what}; remove text_unit")
    return unit


def _check_keys(entry: dict, where: str) -> None:
    for k in entry:
        if k in _UNSUPPORTED_KEYS:
            raise ConfigError(f"{where}: {k}: {_UNSUPPORTED_KEYS[k]}")
        if k not in _KEYS:
            raise ConfigError(f"{where}: unknown key {k!r}: {did_you_mean(k, list(_KEYS))}")


def _columns(
    given: Any, fmt: str, from_alpaca: bool, where: str, sample_kind: str | None = None
) -> dict[str, str]:
    if not isinstance(given, dict):
        raise ConfigError(f"{where}: columns must be a mapping of field names to column names")
    fields = dict(FORMATS.get(fmt).DEFAULT_COLUMNS)
    aliases = dict(LF_COLUMNS.get(fmt, {}))
    kind = get_kind(sample_kind) if sample_kind else None
    if kind is not None:
        fields.update(kind.COLUMNS)
        aliases.update({k: v for k, v in _LF_KIND_ALIASES.items() if v in kind.COLUMNS})
    out: dict[str, str] = {}
    for name, column in given.items():
        if name in _UNSUPPORTED_COLUMNS:
            raise ConfigError(f"{where}: columns.{name}: {_UNSUPPORTED_COLUMNS[name]}")
        if name in _KIND_COLUMNS and aliases.get(name, name) not in fields:
            raise ConfigError(f"{where}: columns.{name}: {_KIND_COLUMNS[name][1]}")
        if from_alpaca and name != "prompt":
            continue  # LLaMA-Factory's pre-training reads only the prompt column of alpaca entries
        field = aliases.get(name, name)
        if field not in fields:
            known = sorted(set(fields) | set(aliases))
            raise ConfigError(
                f"{where}: columns.{name} does not apply to format {fmt}; it reads {', '.join(known)}"
            )
        if not isinstance(column, str) or not column:
            raise ConfigError(f"{where}: columns.{name} must be a column name, got {column!r}")
        out[field] = column
    return out


def _tags(given: Any, fmt: str, where: str) -> dict[str, str]:
    if not given:
        return {}
    if not isinstance(given, dict):
        raise ConfigError(f"{where}: tags must be a mapping such as {{role_tag: from, content_tag: value}}")
    if fmt == "openai":
        # LLaMA-Factory spells out OpenAI's own names as tags; our openai format reads them natively.
        for k, v in given.items():
            allowed = _OPENAI_TAGS.get(k, ())
            if allowed is not None and v not in allowed:
                raise ConfigError(
                    f"{where}: format openai reads OpenAI's role names, so tags.{k}={v!r} cannot apply; "
                    "use formatting: sharegpt with these tags"
                )
        return {}
    defaults = FORMATS.hook(fmt, "DEFAULT_TAGS")
    if not defaults:
        raise ConfigError(f"{where}: tags apply to sharegpt data; format {fmt} takes none")
    for k, v in given.items():
        if k not in defaults:
            raise ConfigError(f"{where}: unknown tag {k!r}: {did_you_mean(k, list(defaults))}")
        if not isinstance(v, str):
            raise ConfigError(f"{where}: tags.{k} must be text, got {v!r}")
    return dict(given)
