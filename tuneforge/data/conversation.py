"""The only internal sample shapes. Format converters produce them; the renderer consumes them.

A ``Conversation`` is a list of messages (system, user, assistant, tool) plus optional tool
schemas; a ``Document`` is plain text for continued pre-training.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tuneforge.errors import RowError

ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class ToolCall:
    """A function call made by the assistant. ``arguments`` is JSON text, as in OpenAI's API."""

    name: str
    arguments: str
    id: str | None = None


@dataclass
class Message:
    role: str
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning: str | None = None  # chain-of-thought shown before the answer (e.g. <think>)
    tool_call_id: str | None = None  # for role "tool": which call this result answers
    name: str | None = None  # for role "tool": the function's name
    # None: the renderer's policy decides (assistant turns trained); False: never trained;
    # True: trained (an assistant turn kept even under mask_history).
    train: bool | None = None


@dataclass
class Conversation:
    messages: list[Message]
    tools: list[dict] | None = None  # OpenAI-style tool schemas

    def validate(self) -> None:
        """Raise RowError if this is not a conversation the renderer can train on."""
        if not self.messages:
            raise RowError("conversation has no messages")
        for i, m in enumerate(self.messages):
            if m.role not in ROLES:
                raise RowError(f"message {i} has role {m.role!r}; expected one of {', '.join(ROLES)}")
            if m.role == "system" and i != 0:
                raise RowError(f"message {i} is a system message; only the first message may be one")
            if not m.content and not m.tool_calls and m.role != "assistant":
                raise RowError(f"message {i} ({m.role}) is empty")
        if not any(m.role == "assistant" for m in self.messages):
            raise RowError("conversation has no assistant message to train on")


@dataclass
class Document:
    """Plain text for continued pre-training; every token is trained."""

    text: str

    def validate(self) -> None:
        if not self.text or not self.text.strip():
            raise RowError("text is empty")


Sample = Conversation | Document
