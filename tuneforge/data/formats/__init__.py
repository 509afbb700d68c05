"""Row formats, one module per name users write as `format:`. See `docs/data.md`.

What a format module defines is `FormatModule` below; the registry checks every module against it
(`tuneforge.registry`). Step 4 of a run: `tuneforge.data.sources` converts each row with the
format's ``convert``.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from tuneforge.registry import Interface, Registry

if TYPE_CHECKING:
    from tuneforge.data.kinds._answers import AnswerSlot


class FormatModule(Interface):
    """A module of `tuneforge.data.formats`: one row format, named by its file."""

    DESCRIPTION: str  # one line for `tuneforge ls formats`
    KIND: Literal["conversation", "document"]  # what ``convert`` gives
    DEFAULT_COLUMNS: dict[str, str]  # field -> column name
    REQUIRED: Set[str]  # fields that must be present

    def convert(row: dict, columns: dict[str, str], tags: dict[str, str]):
        """The row as a `Conversation` or `Document`; raises `tuneforge.errors.RowError` for a bad row."""

    DEFAULT_TAGS: Mapping[str, str] = MappingProxyType({})  # tag -> default value (sharegpt's role names)
    # where preference and KTO rows keep the answer, for a format `_answers` has no slot for
    ANSWER_SLOT: AnswerSlot | None = None

    helpers = (
        # openai's row parsing, which the other formats, the sample kinds and data.prompts import;
        # a private module of this package would hold them better
        "decode_json",
        "text_or_none",
        "parse_tool_call",
        "parse_tools",
        "required",
        "is_missing",
        # used inside openai only: to become private there
        "arguments_text",
        "loads",
        "MISSING",
    )


FORMATS = Registry("formats", "tuneforge.data.formats", interface=FormatModule)
