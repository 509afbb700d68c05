"""What a task evaluates: a loaded model with its tokenizer and the chat template to prompt with.

A run is evaluated with the template it trained with (saved in RUN_DIR/tokenizer); its base model
is evaluated with the very same template, so before and after differ only in the weights.
"""

from __future__ import annotations

from dataclasses import dataclass

from tuneforge.data.templates import Template


@dataclass
class Target:
    model: object
    tokenizer: object
    chat_template: str | None
    stop_tokens: tuple[str, ...]
    side: str = "model"  # 'before', 'after' or 'model'

    @property
    def template(self) -> Template | None:
        return Template("run", self.chat_template, self.stop_tokens) if self.chat_template else None

    @property
    def device(self):
        return next(self.model.parameters()).device
