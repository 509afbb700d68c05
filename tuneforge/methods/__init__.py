"""Tuning methods, one module per name users write as `method.name`.

Each module defines ``Config`` (a pydantic model with ``name: Literal[<file name>]``), a one-line
``DESCRIPTION``, ``SUPPORTS`` (dict: quantized_base, merge), ``load_kwargs(cfg) -> dict`` (extra
``from_pretrained`` arguments, e.g. a quantization config) and ``apply(model, cfg) -> model``.
`tuneforge.models.wrap` is the one place that calls ``apply``.
"""

from tuneforge.registry import Registry

METHODS = Registry("methods", "tuneforge.methods")
