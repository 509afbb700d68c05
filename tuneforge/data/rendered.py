"""The renderer's result and option types (`tuneforge.data.render`), in a module of their own so
that the prompt shortening it calls (`tuneforge.data.truncate`) can use them without importing the
renderer back."""

from __future__ import annotations

from dataclasses import dataclass

IGNORE_INDEX = -100

# DropSample reasons: short and fixed, so the pipeline can count dropped samples by reason.
NOTHING_TO_TRAIN = "no message to train on"
NO_TRAINED_TOKEN = "no trained token within max_length"
OPENING_ANSWER = "assistant turn opening the conversation has no generation prompt to start from"
SHORT_DOCUMENT = "document shorter than 2 tokens"
TEMPLATE_ERROR = "template error: "  # + the template's own message
TOO_DEEP = "nested too deeply to render"


@dataclass(frozen=True)
class RenderOptions:
    max_length: int
    train_on_prompt: bool = False
    mask_history: bool = False
    prompt_truncation: str = "keep_end"  # data.prompt_truncation: keep_end, drop_turns or drop


@dataclass
class Rendered:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX where not trained, else the token id
    prompt_shortened: bool = False  # by data.prompt_truncation, counted in the data statistics


class DropSample(Exception):
    """A sample that cannot be trained on; the pipeline counts it under ``reason`` and goes on.
    ``detail`` (e.g. its length) is shown with the reason where the sample is shown."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason, self.detail = reason, detail
