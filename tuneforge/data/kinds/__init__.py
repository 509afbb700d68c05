"""Sample kinds beyond plain conversations and documents, one module per name a stage gives as
its ``SAMPLE_KIND`` (``preference`` for rm/dpo/orpo/simpo, ``unpaired`` for kto).

Step 4 of a run. A kind reads rows of an existing conversation format (alpaca, sharegpt, openai)
plus its own columns, and renders each sample with `tuneforge.data.render` (the only code that
tokenizes training data). What a kind module defines is `KindModule` below.

`tuneforge.data.sources` and `tuneforge.data.pipeline` dispatch to the kind; conversation and
document data keep their own path there.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

from tuneforge.registry import Interface, Registry


@dataclass
class KindRow:
    """One rendered sample of a kind: its dataset columns and what it counts for in the statistics."""

    columns: dict
    tokens: int
    trained: int
    prompt_shortened: bool = False  # by data.prompt_truncation, counted in the data statistics


class KindModule(Interface):
    """A module of `tuneforge.data.kinds`: one sample kind, named by its file."""

    BASE_KIND: Literal["conversation"]  # the kind of the row formats it reads
    COLUMNS: dict[str, str]  # its own fields -> default column names (e.g. chosen, rejected)
    REQUIRED: Set[str]  # which of its own fields a row must have
    SAMPLE: type  # the sample class ``convert`` gives

    def required(fmt_name: str, fmt: ModuleType) -> set[str]:
        """The fields a file of format ``fmt`` must have."""

    def convert(fmt_name: str, fmt: ModuleType, row: dict, columns: dict, tags: dict):
        """The row as a ``SAMPLE``; raises `tuneforge.errors.RowError` for a bad row."""

    def render(sample, tokenizer, template, opts) -> KindRow:
        """The sample's dataset columns; raises `tuneforge.data.render.DropSample`."""

    def show(tokenizer, row: dict, color: bool) -> str:
        """One rendered row for `tuneforge data inspect`."""

    helpers = (
        "render_answer",  # preference's, which unpaired imports
        "render_answers",  # likewise: the answers after one prompt, shortened once where needed
        "PROMPT_DIFFERS",  # preference's drop reasons, used there only: to become private
        "ANSWER_SPLIT",
    )


SAMPLE_KINDS = Registry("sample_kinds", "tuneforge.data.kinds", interface=KindModule)


def kind_of(sample: object) -> ModuleType:
    """The kind module whose ``SAMPLE`` class ``sample`` is."""
    for module in SAMPLE_KINDS.modules():
        if isinstance(sample, module.SAMPLE):
            return module
    raise TypeError(f"no sample kind renders {type(sample).__name__}")


def get_kind(sample_kind: str) -> ModuleType | None:
    """The kind module for a stage's SAMPLE_KIND, or None for 'conversation' and 'document'."""
    return SAMPLE_KINDS.get(sample_kind) if sample_kind in SAMPLE_KINDS else None
