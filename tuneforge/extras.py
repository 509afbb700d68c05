"""Optional parts of tuneforge and the extra that installs each (`pip install 'tuneforge[EXTRA]'`):
the base install is what training needs; serving, evaluation metrics and plots, and the optimiser
methods are extras. A feature whose package is missing says which extra to install, in one line."""

from __future__ import annotations

import importlib.util
import logging

from tuneforge.errors import ConfigError

log = logging.getLogger("tuneforge")

# the module a feature imports -> the extra that installs it (pyproject.toml's optional-dependencies)
EXTRA_OF = {
    "starlette": "serve",
    "uvicorn": "serve",
    "sacrebleu": "eval",
    "rouge_score": "eval",
    "matplotlib": "eval",
    "galore_torch": "optim",
    "apollo_torch": "optim",
    "badam": "optim",
    "lm_eval": "lm-eval",
    "jinja2": "ui",
    "jsonschema": "generate",
    "datasketch": "generate",
}


def missing(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def install_hint(modules: list[str], extra: str | None = None) -> str:
    extras = [extra] if extra else sorted({EXTRA_OF[m] for m in modules})
    return f"pip install 'tuneforge[{','.join(extras)}]'"


def require(feature: str, *modules: str, extra: str | None = None) -> None:
    """A ConfigError naming the extra (``extra``, where a module is in several) when one of
    ``modules`` is not installed."""
    gone = missing(*modules)
    if gone:
        raise ConfigError(
            f"{feature} needs {', '.join(gone)}, which is not installed: {install_hint(gone, extra)}"
        )


def available(feature: str, *modules: str) -> bool:
    """For a default that is skipped without its extra (a plot): False, with one line saying so."""
    gone = missing(*modules)
    if gone:
        log.warning("%s skipped: it needs %s (%s)", feature, ", ".join(gone), install_hint(gone))
    return not gone
