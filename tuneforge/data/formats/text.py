"""Plain-text rows -> Document, for continued pre-training (stage pt).

Step 4 of a run: `tuneforge.data.sources` calls ``convert`` once per row. ``.txt`` files arrive
here as one row per paragraph (see `tuneforge.data.sources`); other files need a ``text`` column
(or ``columns: {text: <your column>}``).

Example row::

    {"text": "The Rhine rises in the Swiss Alps and flows into the North Sea."}
"""

from __future__ import annotations

from tuneforge.data.conversation import Document
from tuneforge.data.formats.openai import required
from tuneforge.errors import RowError

DESCRIPTION = "Plain text ({text}) for continued pre-training; .txt files split on blank lines"
KIND = "document"
DEFAULT_COLUMNS = {"text": "text"}
REQUIRED = {"text"}


def convert(row: dict, columns: dict[str, str], tags: dict[str, str]) -> Document:
    value = required(row, columns["text"])
    if not isinstance(value, str):
        raise RowError(f"bad text: {columns['text']!r} is a {type(value).__name__}, not text")
    return Document(value)
