"""Row formats, one module per name users write as `format:`. See `docs/data.md`.

Each module defines ``KIND`` ('conversation' or 'document'), ``DEFAULT_COLUMNS`` (field ->
column name), ``REQUIRED`` (fields that must be present) and
``convert(row: dict, columns: dict[str, str], tags: dict[str, str]) -> Conversation | Document``
which raises `tuneforge.errors.RowError` for a bad row.
"""

from tuneforge.registry import Registry

FORMATS = Registry("formats", "tuneforge.data.formats")
