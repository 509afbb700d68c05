"""What `tuneforge serve` serves: the model ids a request's ``model`` field can name, resolved from
the command line before any weights load.

``MODEL_OR_RUN`` is a finished run folder or anything `model.name_or_path` accepts (an HF folder, a
.gguf file, ``package:...``, a hub id). Extra ``--adapter NAME=RUN_DIR`` runs are LoRA adapters over
the same base; they are loaded once into one PEFT model and picked per request. Each id keeps the
chat template and stop tokens its run trained with, so serving renders prompts as training did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneforge.config.schema import ModelConfig
from tuneforge.errors import ConfigError, ModelError

BASE_ID = "base"


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
    adapters: dict[str, Path] = field(default_factory=dict)  # adapter name -> adapter folder
    models: dict[str, ServedModel] = field(default_factory=dict)

    def get(self, model_id: str) -> ServedModel | None:
        return self.models.get(model_id)


def _run_parts(run_dir: Path):
    from tuneforge.artifacts import read_run

    cfg, manifest = read_run(run_dir)
    template_file = run_dir / "chat_template.jinja"
    template = template_file.read_text(encoding="utf-8") if template_file.is_file() else None
    return cfg, manifest, template, tuple(manifest.get("stop_tokens", ()))


def build_catalog(
    model_or_run: str,
    adapters: list[str] = (),
    *,
    name: str | None = None,
    template: str | None = None,
) -> Catalog:
    """Resolve the command line into a `Catalog`; raises ConfigError / ModelError with the fix."""
    path = Path(model_or_run).expanduser()
    if (path / "manifest.json").is_file():
        catalog = _from_run(path, name or path.resolve().name)
    elif path.is_dir() and (path / "config.yaml").is_file():
        raise ModelError(
            f"{path} is an unfinished tuneforge run (no manifest.json); finish or resume it first"
        )
    else:
        catalog = _from_model(model_or_run, name, template)
    for spec in adapters:
        _add_adapter(catalog, spec)
    return catalog


def _from_run(run_dir: Path, model_id: str) -> Catalog:
    cfg, manifest, chat_template, stops = _run_parts(run_dir)
    if manifest.get("artifact") == "adapter":
        catalog = Catalog(cfg.model, cfg.method, str(run_dir / "tokenizer"))
        catalog.adapters[model_id] = run_dir / "adapter"
        catalog.models[model_id] = ServedModel(model_id, model_id, chat_template, stops)
        catalog.models[BASE_ID] = ServedModel(BASE_ID, None, chat_template, stops)
    else:  # full or freeze: the run saved whole weights
        full = ModelConfig(name_or_path=str(run_dir / "model"), dtype=cfg.model.dtype)
        catalog = Catalog(full, None, str(run_dir / "tokenizer"))
        catalog.models[model_id] = ServedModel(model_id, None, chat_template, stops)
    return catalog


def _from_model(source: str, name: str | None, template: str | None) -> Catalog:
    from tuneforge.data.templates import resolve_template
    from tuneforge.models.load import load_tokenizer, resolve_model_source

    cfg = ModelConfig(name_or_path=source, dtype="auto")
    tokenizer_dir = resolve_model_source(cfg)
    model_id = name or Path(source.removeprefix("package:")).name.removesuffix(".gguf")
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


def _add_adapter(catalog: Catalog, spec: str) -> None:
    from tuneforge.methods import METHODS

    name, sep, run = spec.partition("=")
    if not sep or not name or not run:
        raise ConfigError(f"--adapter {spec!r}: write NAME=RUN_DIR, e.g. --adapter support=runs/support")
    if name in catalog.models:
        raise ConfigError(f"--adapter {spec!r}: the model id {name!r} is already taken; choose another NAME")
    run_dir = Path(run).expanduser()
    cfg, manifest, chat_template, stops = _run_parts(run_dir)
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
    catalog.adapters[name] = run_dir / "adapter"
    catalog.models[name] = ServedModel(name, name, chat_template, stops)
