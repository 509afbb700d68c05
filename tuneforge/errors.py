"""User-facing errors. Anything raised as a TuneforgeError is printed by the CLI as one line
(`error: ...`) with exit code 2; every message names the file, row or key and says how to fix it."""


class TuneforgeError(Exception):
    """Base class for errors caused by the user's input, not by a bug in tuneforge."""


class ConfigError(TuneforgeError):
    """A config key or value is wrong."""


class DataError(TuneforgeError):
    """A data file, row or column is wrong."""


class ModelError(TuneforgeError):
    """A model path, file or architecture cannot be used."""

    @classmethod
    def damaged(cls, path, why: str) -> "ModelError":
        """A model file cut short or corrupted (``why``: what was found)."""
        return cls(f"{path} is damaged or incomplete ({why}); re-download or re-export it")


class TrainingError(TuneforgeError):
    """Training was stopped by a guard (nothing trainable, all-masked batch, NaN loss)."""


class RowError(ValueError):
    """Raised by a format converter for one bad row; the data pipeline adds file and row number
    and turns it into a DataError (or drops the row and counts it, where the user asked for that)."""
