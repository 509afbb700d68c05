"""The OpenAI wire format of `tuneforge serve`: request bodies validated into typed objects, errors in
OpenAI's ``{"error": {...}}`` shape, and tool calls parsed back out of generated text.

Requests are parsed here (not by a web framework) so every bad request becomes a one-line 400 that
names the field, never a stack trace: that includes bodies nested past `MAX_DEPTH`, strings holding
lone UTF-16 surrogates (which no tokenizer can encode) and seeds outside 64 bits. Unknown fields are ignored, as OpenAI's clients send optional
ones freely; fields we cannot honour (n > 1, penalties) are refused rather than silently ignored.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_DEPTH = 64  # nesting levels of a request body; OpenAI bodies (tool schemas included) need far fewer
_SURROGATE = re.compile("[\ud800-\udfff]")


class APIError(Exception):
    """An error answered to the client as ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)  # what torch and vLLM seed with
    stream: bool = False
    n: int = 1
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0

    def stops(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > 4 or any(not s for s in stops):
            raise APIError(400, "stop: give at most 4 non-empty strings", param="stop")
        return stops

    def check_supported(self) -> None:
        if self.n != 1:
            raise APIError(400, f"n={self.n} is not supported; ask for one choice per request", param="n")
        for name in ("frequency_penalty", "presence_penalty"):
            if getattr(self, name):
                raise APIError(400, f"{name} is not supported; leave it at 0", param=name)


class ChatRequest(_Request):
    messages: list[dict[str, Any]] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    stream_options: dict[str, Any] | None = None

    def check_supported(self) -> None:
        super().check_supported()
        for i, m in enumerate(self.messages):
            # OpenAI allows a null content only on an assistant message that calls tools
            if m.get("content") is None and not (m.get("role") == "assistant" and m.get("tool_calls")):
                raise APIError(
                    400,
                    f"messages[{i}].content is null; give the message's text (only an assistant message "
                    "with tool_calls may leave it out)",
                    param=f"messages[{i}].content",
                )

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(_Request):
    prompt: str | list[str]
    max_tokens: int | None = Field(16, ge=1)  # OpenAI's default for this endpoint

    def text(self) -> str:
        if isinstance(self.prompt, str):
            return self.prompt
        if len(self.prompt) != 1:
            raise APIError(400, "prompt: give one prompt per request (a string)", param="prompt")
        return self.prompt[0]


def parse(model: type[BaseModel], raw: bytes) -> Any:
    """The request body as ``model``, or a 400 naming the first bad field."""
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except ValueError as e:
        raise APIError(400, f"the request body is not valid JSON: {e}") from None
    except RecursionError:
        raise APIError(400, _too_deep()) from None
    if not isinstance(data, dict):
        raise APIError(400, "the request body must be a JSON object")
    _check_tree(data)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        raise APIError(400, f"{where}: {err['msg']}", param=where) from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON value")


def _too_deep() -> str:
    return f"the request body nests deeper than {MAX_DEPTH} levels; send a flatter JSON object"


def _check_tree(data: dict) -> None:
    """Refuse what would fail later, deep inside validation, templating or tokenization."""
    stack: list[tuple[Any, int, tuple]] = [(data, 1, ())]
    while stack:
        value, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            raise APIError(400, _too_deep())
        if isinstance(value, str):
            if _SURROGATE.search(value):
                where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
                raise APIError(
                    400,
                    f"{where or 'body'}: holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape without "
                    "its pair); send valid Unicode text",
                    param=where or None,
                )
        elif isinstance(value, dict):
            for key, item in value.items():
                stack.append((key, depth, path))
                stack.append((item, depth + 1, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, depth + 1, (*path, i)) for i, item in enumerate(value))


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


# --- tool calls in generated text ---------------------------------------------------------------

_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)


def parse_tool_calls(text: str) -> tuple[str, list[dict]]:
    """Split generated ``text`` into (content, OpenAI tool calls).

    Reads the Hermes / Qwen2.5 shape (``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``,
    one block per call) and, as Llama 3.1 writes it, an answer that is one bare JSON object with
    ``name`` and ``arguments`` or ``parameters``. Text that is neither stays content.
    """
    calls: list[dict] = []
    if "<tool_call>" in text:
        for block in _TAGGED.findall(text):
            call = _call(block)
            if call is None:
                return text, []  # not valid JSON: hand the text back untouched
            calls.append(call)
        return text[: text.index("<tool_call>")].strip(), calls
    stripped = text.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        call = _call(stripped)
        if call is not None:
            return "", [call]
    return text, []


def _call(block: str) -> dict | None:
    try:
        obj = json.loads(block)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    return {
        "id": new_id("call"),
        "type": "function",
        "function": {"name": obj["name"], "arguments": args if isinstance(args, str) else json.dumps(args)},
    }


FinishReason = Literal["stop", "length", "tool_calls"]
