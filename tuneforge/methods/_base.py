"""Shared pieces of method configs."""

from pydantic import BaseModel, ConfigDict


class MethodConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
