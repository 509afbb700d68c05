"""Config: the typed schema, YAML + key=value loading, and the generated reference."""

__all__ = ["Config", "load_config"]


def __getattr__(name: str):
    # lazy: the schema imports the method registry (peft, bitsandbytes); `tuneforge.config.raw`
    # must stay importable without them
    if name == "load_config":
        from tuneforge.config.load import load_config

        return load_config
    if name == "Config":
        from tuneforge.config.schema import Config

        return Config
    raise AttributeError(f"module 'tuneforge.config' has no attribute {name!r}")
