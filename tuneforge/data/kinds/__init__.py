"""Sample kinds beyond plain conversations and documents, one module per name a stage gives as
its ``SAMPLE_KIND`` (``preference`` for rm/dpo/orpo/simpo, ``unpaired`` for kto).

Step 4 of a run. A kind reads rows of an existing conversation format (alpaca, sharegpt, openai)
plus its own columns, and renders each sample with `tuneforge.data.render` (the only code that
tokenizes training data). Each module defines:

- ``BASE_KIND``: the kind of the row formats it reads ('conversation');
- ``COLUMNS``: its own fields -> default column names (e.g. chosen, rejected), ``REQUIRED``;
- ``required(fmt_name, fmt) -> set[str]``: the fields a file must have;
- ``convert(fmt_name, fmt, row, columns, tags) -> sample`` (raises RowError for a bad row);
- ``SAMPLE``: the sample class it converts to; ``render(sample, tokenizer, template, opts) ->
  KindRow`` (raises DropSample);
- ``show(tokenizer, row, color) -> str``: one rendered row for `tuneforge data inspect`.

`tuneforge.data.sources` and `tuneforge.data.pipeline` dispatch to the kind; conversation and
document data keep their own path there.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from tuneforge.registry import Registry

SAMPLE_KINDS = Registry("sample_kinds", "tuneforge.data.kinds")


@dataclass
class KindRow:
    """One rendered sample of a kind: its dataset columns and what it counts for in the statistics."""

    columns: dict
    tokens: int
    trained: int


def kind_of(sample: object) -> ModuleType:
    """The kind module whose ``SAMPLE`` class ``sample`` is."""
    for module in SAMPLE_KINDS.modules():
        if isinstance(sample, module.SAMPLE):
            return module
    raise TypeError(f"no sample kind renders {type(sample).__name__}")


def get_kind(sample_kind: str) -> ModuleType | None:
    """The kind module for a stage's SAMPLE_KIND, or None for 'conversation' and 'document'."""
    return SAMPLE_KINDS.get(sample_kind) if sample_kind in SAMPLE_KINDS else None
