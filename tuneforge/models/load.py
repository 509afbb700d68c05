"""Step 5 of a run: find the base model and load it, with its tokenizer.

`model.name_or_path` may be a local HF folder, a .gguf file, a folder plus `model.gguf_file`,
``package:PKG/FILE.gguf`` (a GGUF shipped inside an installed Python package) or a hub id.
GGUF sources are converted once into a cached HF folder (`tuneforge.models.gguf`), so everything
after `resolve_model_source` deals with HF folders or hub ids only. The method's `load_kwargs`
(e.g. a 4-bit quantization config) are passed to ``from_pretrained`` here; its `apply` runs later,
in `tuneforge.models.wrap`.

A model's own Python code runs only with ``trust_remote_code`` true in the `ModelConfig` given here;
callers set it from the command's ``--trust-remote-code`` (`check_remote_code` refuses a file that
asks for it alone). Weight files are checked for truncation before transformers reads them.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from tuneforge.config.schema import ModelConfig
from tuneforge.errors import ConfigError, ModelError
from tuneforge.models.gguf import ensure_converted

PACKAGE_PREFIX = "package:"


def check_remote_code(value_from_file: bool, asked: bool, source: str) -> None:
    """Refuse when a file (``source``) turns on model.trust_remote_code but the person running the
    command did not ask for it there: a shared config or run folder never runs code by itself."""
    if value_from_file and not asked:
        raise ConfigError(
            f"{source} sets model.trust_remote_code: true; remote code runs only when you ask for it: "
            "add --trust-remote-code to this command"
        )


def check_weight_files(folder: str | Path) -> None:
    """A ModelError naming the first truncated .safetensors file in ``folder`` (its header promises
    more bytes than the file holds); transformers would fail with a traceback instead."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.safetensors")):
        size = path.stat().st_size
        try:
            with open(path, "rb") as f:
                head = f.read(8)
                length = int.from_bytes(head, "little") if len(head) == 8 else -1
                header = json.loads(f.read(length)) if 0 < length <= size - 8 else None
            ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"] if header else []
        except (ValueError, KeyError, TypeError, IndexError):
            raise ModelError.damaged(path, "its header cannot be read") from None
        if header is None or 8 + length + max(ends, default=0) > size:
            raise ModelError.damaged(path, f"{size} bytes, fewer than its header describes")


def resolve_model_source(cfg: ModelConfig) -> str:
    """The folder or hub id to load from; GGUF sources come back as their converted cache folder."""
    name = cfg.name_or_path
    if name.startswith(PACKAGE_PREFIX):
        return str(ensure_converted(package_file(name)))
    path = Path(name).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelError(
                f"model {name!r} is a file but not a .gguf file; give an HF model folder (with config.json) "
                "or a .gguf file"
            )
        if cfg.gguf_file:
            raise ModelError(
                f"model.gguf_file is for a folder, but model.name_or_path {name!r} already names a file"
            )
        return str(ensure_converted(path))
    if path.is_dir():
        return _resolve_folder(path, cfg.gguf_file)
    if _looks_local(name):
        raise ModelError(
            f"model path {name!r} does not exist (looked at {path.absolute()}); give an existing HF model "
            "folder or .gguf file"
        )
    if cfg.gguf_file:
        return str(ensure_converted(_download_hub_file(name, cfg.gguf_file, cfg.revision)))
    return name


def package_file(spec: str) -> Path:
    """Locate ``package:PKG/FILE.gguf`` inside an installed package, without importing it."""
    pkg, _, rel = spec[len(PACKAGE_PREFIX) :].partition("/")
    if not pkg or not rel or "." in pkg:
        raise ModelError(f"model {spec!r}: write package:PKG/FILE.gguf with PKG a top-level package name")
    try:
        found = importlib.util.find_spec(pkg)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise ModelError(
            f"model {spec!r}: Python package {pkg!r} is not installed; pip install it, or give the path "
            "to the .gguf file"
        )
    locations = [Path(p) for p in (found.submodule_search_locations or [])]
    if not locations:
        raise ModelError(f"model {spec!r}: {pkg!r} is a module, not a package folder that could hold files")
    for loc in locations:
        if (loc / rel).is_file():
            return loc / rel
    have = sorted(str(p.relative_to(loc)) for loc in locations for p in loc.rglob("*.gguf"))
    raise ModelError(
        f"model {spec!r}: package {pkg!r} ({locations[0]}) has no file {rel!r}; "
        + (f"its .gguf files: {', '.join(have[:10])}" if have else "it holds no .gguf files")
    )


def load_tokenizer(cfg: ModelConfig):
    """The tokenizer of the resolved source, with a pad token."""
    from transformers import AutoTokenizer

    source = resolve_model_source(cfg)
    tokenizer = _from_source(AutoTokenizer.from_pretrained, cfg, source, **_source_kwargs(cfg))
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelError(
                f"the tokenizer of {cfg.name_or_path!r} has neither a pad nor an eos token; add a pad_token "
                "to its tokenizer_config.json"
            )
        # Padding positions carry label -100 and attention mask 0 (tuneforge.data.collate.pad_collate), so
        # the pad id is never trained on nor attended to; eos exists in every causal-LM tokenizer,
        # while adding a new token would resize the embeddings.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(cfg: ModelConfig, method_cfg: Any, auto_class: Any = None, **extra: Any):
    """The base model, loaded as the method needs it (e.g. quantized for qlora), not yet wrapped.
    ``auto_class`` (default AutoModelForCausalLM) and ``extra`` from_pretrained kwargs let a stage
    load another head (`rm`: AutoModelForSequenceClassification with num_labels=1)."""
    from transformers import AutoModelForCausalLM

    from tuneforge.methods import METHODS
    from tuneforge.threads import announce

    announce()  # the CPU threads the command chose at its start, said once
    method = METHODS.get(method_cfg.name)
    source = resolve_model_source(cfg)
    check_weight_files(source)
    kwargs: dict[str, Any] = {"dtype": "auto" if cfg.dtype == "auto" else getattr(torch, cfg.dtype)}
    kwargs.update(_source_kwargs(cfg))
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    kwargs.update(method.load_kwargs(method_cfg))
    kwargs.update(extra)
    model = _from_source((auto_class or AutoModelForCausalLM).from_pretrained, cfg, source, **kwargs)
    keep_4bit_layers_exact(model)
    return model


def keep_4bit_layers_exact(model: torch.nn.Module) -> None:
    """Turn off bitsandbytes' CPU inference repack on every 4-bit layer.

    On CPUs with AVX512-BF16, bitsandbytes repacks a 4-bit weight in place on its first eval-mode
    forward without grad. From then on the layer computes in bf16, a later training step loses the
    gradient to its input (the packed gemv has no autograd: LoRA layers below stop learning after
    the first evaluation), and the weight no longer dequantizes. Training, evaluation and merge all
    need the exact path, so we keep it.
    """
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def _resolve_folder(path: Path, gguf_file: str | None) -> str:
    ggufs = sorted(p.name for p in path.glob("*.gguf"))
    if gguf_file:
        if not (path / gguf_file).is_file():
            raise ModelError(
                f"model.gguf_file {gguf_file!r} is not in {path}; "
                + (f"its .gguf files: {', '.join(ggufs)}" if ggufs else "it holds no .gguf files")
            )
        return str(ensure_converted(path / gguf_file))
    if not (path / "config.json").is_file():
        hint = (
            f"; it holds GGUF files, pick one with model.gguf_file ({', '.join(ggufs[:5])})" if ggufs else ""
        )
        raise ModelError(f"model folder {path} has no config.json, so it is not an HF model folder{hint}")
    return str(path)


def _looks_local(name: str) -> bool:
    # a hub id is "org/name" (one slash) or a bare "name"; anything else reads as a path
    return (
        name.startswith(("/", ".", "~"))
        or (os.sep != "/" and os.sep in name)
        or name.count("/") > 1
        or name.lower().endswith(".gguf")
    )


def _source_kwargs(cfg: ModelConfig) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"trust_remote_code": cfg.trust_remote_code}
    if cfg.revision:
        kwargs["revision"] = cfg.revision
    return kwargs


def _from_source(load: Callable, cfg: ModelConfig, source: str, **kwargs):
    from safetensors import SafetensorError

    try:
        return load(source, **kwargs)
    except SafetensorError as e:  # damage the header check cannot see
        raise ModelError(
            f"a weight file of {cfg.name_or_path!r} ({source}) is damaged or incomplete "
            f"({' '.join(str(e).split())}); re-download or re-export it"
        ) from e
    except (OSError, ValueError) as e:
        detail = " ".join(str(e).split())
        if Path(source).exists():
            raise ModelError(f"cannot load {cfg.name_or_path!r} from {source}: {detail}") from e
        raise ModelError(
            f"model {cfg.name_or_path!r} is not a local folder or file, and loading it from the hub failed "
            f"(offline?): {detail}; give a path to an HF folder or a .gguf file"
        ) from e


def _download_hub_file(repo: str, filename: str, revision: str | None) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(repo, filename, revision=revision))
    except (OSError, ValueError, EntryNotFoundError) as e:
        raise ModelError(
            f"model {repo!r} is not a local folder or file, and downloading {filename!r} from the hub failed "
            f"(offline?): {' '.join(str(e).split())}; give a path to an HF folder or a .gguf file"
        ) from e
