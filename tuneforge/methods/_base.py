"""Shared pieces of method configs."""

from pydantic import BaseModel, ConfigDict


class MethodConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def no_load_kwargs(cfg: MethodConfig) -> dict:
    """``load_kwargs`` of methods that load the base as it is (no quantization)."""
    return {}
