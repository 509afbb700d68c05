"""Config: the typed schema, YAML + key=value loading, and the generated reference."""

from tuneforge.config.load import load_config
from tuneforge.config.schema import Config

__all__ = ["Config", "load_config"]
