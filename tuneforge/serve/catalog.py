"""What `tuneforge serve` serves: the model ids a request's ``model`` field can name, resolved from
the command line before any weights load.

``MODEL_OR_RUN`` is a finished run folder or anything `model.name_or_path` accepts (an HF folder, a
.gguf file, ``package:...``, a hub id). Extra ``--adapter NAME=RUN_DIR`` runs are LoRA adapters over
the same base; they are loaded once into one PEFT model and picked per request. Each id keeps the
chat template and stop tokens its run trained with, so serving renders prompts as training did.
Ids are plain names (`ID_PATTERN`: never a path); the PEFT adapter names are our own (adapter0, ...),
since PEFT refuses dots. The model's own code runs only with ``--trust-remote-code``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneforge.config.schema import ModelConfig
from tuneforge.errors import ConfigError, ModelError

BASE_ID = "base"
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class ServedModel:
    id: str
    adapter: str | None  # the PEFT adapter answering for this id; None = the base weights
    chat_template: str | None
    stop_tokens: tuple[str, ...]
    owned_by: str = "tuneforge"


@dataclass
class Catalog:
    """Everything a backend needs to load: one base (or full-weights) model plus adapters."""

    model: ModelConfig  # the base model (for a full/freeze run: its saved weights folder)
    method: Any  # the run's method config, for how the base is loaded (qlora: quantized); or None
    tokenizer_dir: str
    adapters: dict[str, Path] = field(default_factory=dict)  # PEFT adapter name -> adapter folder
    models: dict[str, ServedModel] = field(default_factory=dict)

    def get(self, model_id: str) -> ServedModel | None:
        return self.models.get(model_id)


def _run_parts(run_dir: Path, trust_remote_code: bool):
    from tuneforge.artifacts import read_run

    cfg, manifest = read_run(run_dir, trust_remote_code=trust_remote_code)
    template_file = run_dir / "chat_template.jinja"
    template = template_file.read_text(encoding="utf-8") if template_file.is_file() else None
    return cfg, manifest, template, tuple(manifest.get("stop_tokens", ()))


def build_catalog(
    model_or_run: str,
    adapters: list[str] = (),
    *,
    name: str | None = None,
    template: str | None = None,
    trust_remote_code: bool = False,
) -> Catalog:
    """Resolve the command line into a `Catalog`; raises ConfigError / ModelError with the fix.
    ``trust_remote_code`` is the command's flag (a run's config.yaml alone never enables it)."""
    if name is not None:
        _check_id(name, f"--name {name!r}")
    path = Path(model_or_run).expanduser()
    if (path / "manifest.json").is_file():
        catalog = _from_run(path, name or _safe_id(path.resolve().name), trust_remote_code)
    elif path.is_dir() and (path / "config.yaml").is_file():
        raise ModelError(
            f"{path} is an unfinished tuneforge run (no manifest.json); finish or resume it first"
        )
    else:
        catalog = _from_model(model_or_run, name, template, trust_remote_code)
    for spec in adapters:
        _add_adapter(catalog, spec, trust_remote_code)
    return catalog


def _check_id(model_id: str, flag: str) -> None:
    if not ID_PATTERN.fullmatch(model_id):
        raise ConfigError(
            f"{flag}: a model id is a plain name of letters, digits, '.', '_' and '-' (no path separators, "
            "no leading dot, at most 128 characters), e.g. support-v2"
        )


def _safe_id(name: str) -> str:
    """A folder or file name as a model id: what the pattern refuses becomes '-'."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).lstrip(".-_")[:128]
    return cleaned or "model"


def _from_run(run_dir: Path, model_id: str, trust_remote_code: bool) -> Catalog:
    cfg, manifest, chat_template, stops = _run_parts(run_dir, trust_remote_code)
    if manifest.get("artifact") == "adapter":
        catalog = Catalog(cfg.model, cfg.method, str(run_dir / "tokenizer"))
        catalog.adapters["adapter0"] = run_dir / "adapter"
        catalog.models[model_id] = ServedModel(model_id, "adapter0", chat_template, stops)
        catalog.models[BASE_ID] = ServedModel(BASE_ID, None, chat_template, stops)
    else:  # full or freeze: the run saved whole weights
        full = ModelConfig(
            name_or_path=str(run_dir / "model"), dtype=cfg.model.dtype, trust_remote_code=trust_remote_code
        )
        catalog = Catalog(full, None, str(run_dir / "tokenizer"))
        catalog.models[model_id] = ServedModel(model_id, None, chat_template, stops)
    return catalog


def _from_model(source: str, name: str | None, template: str | None, trust_remote_code: bool) -> Catalog:
    from tuneforge.data.templates import resolve_template
    from tuneforge.models.load import load_tokenizer, resolve_model_source

    cfg = ModelConfig(name_or_path=source, dtype="auto", trust_remote_code=trust_remote_code)
    tokenizer_dir = resolve_model_source(cfg)
    model_id = name or _safe_id(Path(source.removeprefix("package:")).name.removesuffix(".gguf"))
    try:
        resolved = resolve_template(template or "auto", load_tokenizer(cfg))
        chat_template, stops = resolved.jinja, resolved.stop_tokens
    except ConfigError:
        if template:
            raise
        chat_template, stops = None, ()  # a base model: /v1/completions only, unless --template
    catalog = Catalog(cfg, None, tokenizer_dir)
    catalog.models[model_id] = ServedModel(model_id, None, chat_template, stops)
    return catalog


def _add_adapter(catalog: Catalog, spec: str, trust_remote_code: bool) -> None:
    from tuneforge.methods import METHODS

    name, sep, run = spec.partition("=")
    if not sep or not name or not run:
        raise ConfigError(f"--adapter {spec!r}: write NAME=RUN_DIR, e.g. --adapter support=runs/support")
    _check_id(name, f"--adapter {spec!r}")
    if name in catalog.models:
        raise ConfigError(f"--adapter {spec!r}: the model id {name!r} is already taken; choose another NAME")
    run_dir = Path(run).expanduser()
    cfg, manifest, chat_template, stops = _run_parts(run_dir, trust_remote_code)
    if manifest.get("artifact") != "adapter":
        raise ConfigError(
            f"--adapter {spec!r}: {run_dir} is a {cfg.method.name} run with full weights, not an adapter; "
            "serve it on its own: tuneforge serve " + str(run_dir)
        )
    if cfg.model.name_or_path != catalog.model.name_or_path:
        raise ConfigError(
            f"--adapter {spec!r}: {run_dir} was trained on {cfg.model.name_or_path!r} but the served base is "
            f"{catalog.model.name_or_path!r}; adapters share one base, so serve it separately"
        )
    base_kwargs = METHODS.get(catalog.method.name).load_kwargs(catalog.method) if catalog.method else {}
    if repr(METHODS.get(cfg.method.name).load_kwargs(cfg.method)) != repr(base_kwargs):
        raise ConfigError(
            f"--adapter {spec!r}: {run_dir} ({cfg.method.name}) needs its base loaded differently "
            "(quantization) from the served base; serve it separately"
        )
    if catalog.method is None:
        catalog.method = cfg.method
    peft_name = f"adapter{len(catalog.adapters)}"
    catalog.adapters[peft_name] = run_dir / "adapter"
    catalog.models[name] = ServedModel(name, peft_name, chat_template, stops)
