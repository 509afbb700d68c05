"""What `tuneforge chat` talks to, loaded once per command: a finished run with the chat template
it trained with (`tuneforge.artifacts.load_run`), or a plain model, to compare with: anything
`model.name_or_path` accepts (an HF folder, a .gguf file, ``package:PKG/FILE.gguf``, a hub id),
with its tokenizer's own chat template or a named one (``--template``, `tuneforge.data.templates`).

A GGUF model is converted once into the cached HF folder (`tuneforge.models.gguf`); later calls
read that folder. The model's own Python code runs only with ``--trust-remote-code``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from tuneforge.errors import ConfigError


@dataclass
class ChatModel:
    model: object
    tokenizer: object
    chat_template: str | None
    stop_tokens: tuple[str, ...]
    about: str  # what it is, for the interactive greeting


def is_run_folder(path: Path) -> bool:
    """A tuneforge run folder, finished or not (a model folder has config.json, never config.yaml)."""
    return (path / "manifest.json").is_file() or (
        (path / "config.yaml").is_file() and not (path / "config.json").is_file()
    )


def load_chat_model(
    source: str, *, template: str | None = None, trust_remote_code: bool = False, out=None
) -> ChatModel:
    """Load ``source`` (a run folder or a model) for chat, saying so first in one line on ``out``
    (default stderr): loading and, for a GGUF's first use, converting take a while. What is quick
    to refuse (an unfinished run, a file asking for remote code, a missing path, an unknown
    template) is refused before that line, so the error is the only line."""
    from tuneforge.artifacts import read_run
    from tuneforge.config.schema import ModelConfig
    from tuneforge.data.templates import TEMPLATES
    from tuneforge.registry import did_you_mean

    path = Path(source).expanduser()
    run = is_run_folder(path)
    if template and run:
        raise ConfigError(
            f"--template {template}: {source} is a run, which chats with the template it trained with "
            f"({path / 'chat_template.jinja'}); --template is for a plain model"
        )
    if template and template not in TEMPLATES:
        raise ConfigError(f"--template {template!r}: {did_you_mean(template, TEMPLATES.names())}")
    if run:
        read_run(path, trust_remote_code=trust_remote_code)
    else:
        # the checkpoint's own dtype, as `tuneforge serve` loads a plain model
        cfg = ModelConfig(name_or_path=source, dtype="auto", trust_remote_code=trust_remote_code)
        _check_source(cfg)
    print(f"loading {source} …", file=out or sys.stderr, flush=True)
    return _from_run(path, trust_remote_code) if run else _from_model(cfg, template)


def _check_source(cfg) -> None:
    """The errors of `resolve_model_source` that need no conversion (a GGUF file is checked as it
    is converted, after the loading line), worded for chat, which also takes a run."""
    from tuneforge.errors import ModelError
    from tuneforge.models.load import PACKAGE_PREFIX, package_file, resolve_model_source

    name = cfg.name_or_path
    path = Path(name).expanduser()
    if name.startswith(PACKAGE_PREFIX):
        package_file(name)
    elif path.is_dir() and not (path / "config.json").is_file():
        ggufs = sorted(path.glob("*.gguf"))
        raise ModelError(
            f"{name} is neither a finished tuneforge run (no manifest.json) nor an HF model folder (no "
            "config.json)"
            + (f"; it holds GGUF files: chat with one, e.g. tuneforge chat {ggufs[0]}" if ggufs else "")
        )
    elif not path.exists():
        try:
            resolve_model_source(cfg)  # a hub id passes; it is looked up as it loads
        except ModelError:
            raise ModelError(
                f"{name} does not exist (looked at {path.absolute()}); give a finished run folder or a "
                "model: an HF folder, a .gguf file, package:PKG/FILE.gguf or a hub id"
            ) from None
    elif path.suffix.lower() != ".gguf":
        resolve_model_source(cfg)  # a file that is no GGUF: its one-line refusal


def _from_run(path: Path, trust_remote_code: bool) -> ChatModel:
    from tuneforge.artifacts import load_run

    run = load_run(path, trust_remote_code=trust_remote_code)
    about = f"{run.manifest.get('method')} on {run.config.model.name_or_path}"
    return ChatModel(run.model, run.tokenizer, run.chat_template, run.stop_tokens, about)


def _from_model(cfg, template: str | None) -> ChatModel:
    from tuneforge.methods import METHODS
    from tuneforge.models.load import load_model, load_tokenizer

    source = cfg.name_or_path
    tokenizer = load_tokenizer(cfg)  # a GGUF source is converted (once) here
    resolved = _template(source, template, tokenizer)
    model = load_model(cfg, METHODS.get("full").Config())
    model.eval()
    own = resolved.name == "tokenizer"
    about = (
        "a plain model, its own chat template" if own else f"a plain model, the {resolved.name} chat template"
    )
    return ChatModel(model, tokenizer, resolved.jinja, resolved.stop_tokens, about)


def _template(source: str, name: str | None, tokenizer):
    from tuneforge.data.templates import TEMPLATES, resolve_template

    if name is None and not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            f"{source} has no chat template of its own (a base model?); chat with a named one: "
            f"--template NAME ({', '.join(TEMPLATES.names())}; `tuneforge ls templates` describes each)"
        )
    try:
        return resolve_template(name or "auto", tokenizer)
    except ConfigError as e:  # its fix names the training key; for chat the same choice is this flag
        raise ConfigError(
            str(e).replace("data.template=", "--template ").replace("data.template", "--template")
        ) from None
