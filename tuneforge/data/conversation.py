"""The only internal sample shapes. Format converters produce them; the renderer consumes them.

A ``Conversation`` is a list of messages (system, user, assistant, tool) plus optional tool
schemas; a ``Document`` is plain text for continued pre-training. The preference stages read a
``PreferencePair`` (prompt + chosen + rejected answer) or, for KTO, an ``UnpairedSample`` (prompt +
one answer + a good/bad label); `tuneforge.data.kinds` converts and renders those.

Every sample has an ``origin`` ("data/a.jsonl line 7"), set by `tuneforge.data.sources`, so a
sample dropped later (by the renderer, for length) can be shown with where it came from. It takes
no part in equality.

One rule for every format: an assistant reply that is trained (``train`` not False) must say
something (text or a tool call); an empty one drops the sample as "empty answer".
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


def _origin():
    return field(default=None, compare=False, repr=False)


@dataclass
class Conversation:
    messages: list[Message]
    tools: list[dict] | None = None  # OpenAI-style tool schemas
    origin: str | None = _origin()

    def validate(self) -> None:
        """Raise RowError if this is not a conversation the renderer can train on."""
        if not self.messages:
            raise RowError("conversation has no messages")
        _check_roles(self.messages)
        for i, m in enumerate(self.messages):
            if m.tool_calls:
                continue
            if m.role != "assistant" and not m.content:
                raise RowError(f"message {i} ({m.role}) is empty")
            if m.role == "assistant" and m.train is not False and not m.content.strip():
                raise RowError(f"empty answer: message {i} (assistant) has no text and no tool call")
        if not any(m.role == "assistant" for m in self.messages):
            raise RowError("conversation has no assistant message to train on")


@dataclass
class Document:
    """Plain text for continued pre-training; every token is trained."""

    text: str
    origin: str | None = _origin()

    def validate(self) -> None:
        if not self.text or not self.text.strip():
            raise RowError("text is empty")


Sample = Conversation | Document


@dataclass
class PreferencePair:
    """A prompt (the conversation so far) with a better (``chosen``) and a worse (``rejected``)
    assistant answer: the sample of the preference stages (rm, dpo, orpo, simpo)."""

    prompt: Conversation
    chosen: Message
    rejected: Message
    origin: str | None = _origin()

    def validate(self) -> None:
        _validate_prompt(self.prompt)
        for what, m in (("chosen", self.chosen), ("rejected", self.rejected)):
            if m.role != "assistant":
                raise RowError(f"bad answer: the {what} answer has role {m.role!r}, not assistant")
            if not m.content.strip() and not m.tool_calls:
                raise RowError(f"empty {what}: the {what} answer is empty")


@dataclass
class UnpairedSample:
    """A prompt with one answer labelled good (True) or bad (False): the sample of `kto`."""

    prompt: Conversation
    completion: Message
    label: bool
    origin: str | None = _origin()

    def validate(self) -> None:
        _validate_prompt(self.prompt)
        if not isinstance(self.label, bool):
            raise RowError(f"bad label: {self.label!r} is not true or false")
        if not self.completion.content.strip() and not self.completion.tool_calls:
            raise RowError("empty answer: the answer is empty")


def _validate_prompt(prompt: Conversation) -> None:
    if not any(m.role == "user" and m.content.strip() for m in prompt.messages):
        raise RowError("empty prompt: there is no user message before the answer")
    _check_roles(prompt.messages)
    if prompt.messages[-1].role not in ("user", "tool"):
        raise RowError(
            f"bad turn order: the prompt ends with a {prompt.messages[-1].role} message; it must end "
            "with the user (or tool) turn the answers reply to"
        )


def _check_roles(messages: list[Message]) -> None:
    for i, m in enumerate(messages):
        if m.role not in ROLES:
            raise RowError(f"message {i} has role {m.role!r}; expected one of {', '.join(ROLES)}")
        if m.role == "system" and i != 0:
            raise RowError(f"message {i} is a system message; only the first message may be one")
