"""A local, scripted OpenAI-compatible chat server for offline tests of `tuneforge data generate`.

The data generation teacher and judges talk to a model over an OpenAI-compatible HTTP endpoint. In
tests that endpoint is a :class:`ScriptedServer`: a standard-library HTTP server on 127.0.0.1 (a free
port, a daemon thread) whose answers come from a Python function, so they are deterministic, and
which can be told to fail the next requests (429, 500, a slow answer, a body that is not JSON, a
response without choices, a dropped connection) to test retries and error handling. Every chat
request it receives is recorded in :attr:`ScriptedServer.calls`.

    with ScriptedServer(echo_last_user) as server:
        server.fail_next("429", retry_after=0)
        ...  # point the client at server.base_url
        assert server.calls[-1].params["temperature"] == 0.7

Only ``POST /v1/chat/completions`` (non-streaming) and ``GET /v1/models`` are served.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Call", "ScriptedServer", "echo_last_user", "json_answer", "FAILURE_KINDS"]

# each failure kind and the options fail_next accepts for it
FAILURE_KINDS: dict[str, frozenset[str]] = {
    "429": frozenset({"retry_after"}),
    "500": frozenset(),
    "timeout": frozenset({"seconds"}),
    "malformed": frozenset(),
    "no_choices": frozenset(),
    "drop": frozenset(),
}


@dataclass
class Call:
    """One chat-completions request as the server received it."""

    model: str
    messages: list[dict]
    params: dict  # every other body field: temperature, seed, n, max_tokens, response_format, ...
    headers: dict[str, str]  # request headers, names lower-cased
    failure: str | None = field(default=None, compare=False)  # the injected failure it got, if any


def echo_last_user(call: Call) -> str:
    """``"answer: "`` + the content of the last user message."""
    for message in reversed(call.messages):
        if message.get("role") == "user":
            return "answer: " + _text(message.get("content"))
    return "answer: "


def json_answer(obj) -> Callable[[Call], str]:
    """An answer function that always returns ``json.dumps(obj)``."""
    text = json.dumps(obj)
    return lambda call: text


def _text(content) -> str:
    """The text of a message content: a string, or a list of OpenAI content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) if isinstance(part, dict) else str(part) for part in content
        )
    return str(content)


def _words(text: str) -> int:
    return len(text.split())


class _BadRequest(Exception):
    pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for a request sleeping in a "timeout" failure
    scripted: ScriptedServer

    def handle_error(self, request, client_address):  # quiet: a client hanging up is expected here
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers (and the openai client) use
    server: _Server

    # ---- plumbing -------------------------------------------------------------------------------
    def setup(self):
        super().setup()
        self.server.scripted._track(self.connection, add=True)

    def finish(self):
        with contextlib.suppress(OSError):
            super().finish()
        self.server.scripted._track(self.connection, add=False)

    def log_message(self, format, *args):  # keep test output clean
        pass

    def _send(self, status: int, body: bytes, *, content_type="application/json", headers=None):
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:  # the client gave up (e.g. its timeout ran out first)
            self.close_connection = True

    def _json(self, status: int, obj, headers=None):
        self._send(status, json.dumps(obj).encode(), headers=headers)

    def _error(self, status: int, message: str, kind: str, headers=None):
        self._json(status, {"error": {"message": message, "type": kind, "code": status}}, headers)

    def _has_key(self) -> bool:
        key = self.server.scripted.api_key
        return key is None or self.headers.get("Authorization", "") == f"Bearer {key}"

    def _unauthorized(self):
        self._error(401, "missing or wrong API key", "invalid_api_key")

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        try:
            n = int(length) if length is not None else 0
        except ValueError:
            self.close_connection = True  # can't know where the body ends
            raise _BadRequest("bad Content-Length") from None
        return self.rfile.read(n) if n > 0 else b""

    # ---- routes ---------------------------------------------------------------------------------
    def do_GET(self):
        if self._path() != "/v1/models":
            self._error(404, f"no route GET {self._path()}", "not_found")
            return
        if not self._has_key():
            self._unauthorized()
            return
        model = self.server.scripted.model
        self._json(
            200, {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "scripted"}]}
        )

    def do_POST(self):
        try:
            raw = self._read_body()
        except _BadRequest as e:
            self._error(400, str(e), "invalid_request_error")
            return
        if self._path() != "/v1/chat/completions":
            self._error(404, f"no route POST {self._path()}", "not_found")
            return
        try:
            call = _parse_call(raw, self.headers)
        except _BadRequest as e:
            self._error(400, str(e), "invalid_request_error")
            return
        authorized = self._has_key()
        failure = self.server.scripted._record(call, authorized=authorized)
        if not authorized:
            self._unauthorized()
            return
        if failure is not None and self._fail(*failure):
            return
        self._answer(call)

    def _fail(self, kind: str, opts: dict) -> bool:
        """Apply an injected failure; True when it took the place of the answer."""
        if kind == "429":
            retry_after = str(opts.get("retry_after", 0))
            self._error(429, "rate limited (scripted)", "rate_limit_exceeded", {"Retry-After": retry_after})
        elif kind == "500":
            self._error(500, "internal error (scripted)", "server_error")
        elif kind == "timeout":
            if self.server.scripted._stopping.wait(float(opts.get("seconds", 5))):
                self.close_connection = True  # stopped while sleeping: just hang up
                return True
            return False  # then answer normally
        elif kind == "malformed":
            self._send(200, b'{"id": "chatcmpl-scripted", "choices": [ this is not json')
        elif kind == "no_choices":
            self._json(
                200,
                {"id": "chatcmpl-scripted", "object": "chat.completion", "created": int(time.time())},
            )
        elif kind == "drop":
            self.close_connection = True  # no status line, no headers: the socket just closes
        return True

    def _answer(self, call: Call):
        scripted = self.server.scripted
        n = call.params.get("n", 1)
        if n is None:
            n = 1
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            self._error(400, f"n must be a positive integer, got {n!r}", "invalid_request_error")
            return
        try:
            answer = scripted.answer(call)
            if isinstance(answer, str):
                contents = [answer] * n
            elif isinstance(answer, list) and all(isinstance(a, str) for a in answer):
                if len(answer) != n:
                    raise ValueError(f"the answer function gave {len(answer)} answers for n={n}")
                contents = list(answer)
            else:
                raise TypeError(f"the answer function returned {type(answer).__name__}, not str or list[str]")
        except Exception as e:  # a bug in the test's script: make it visible, not a hang
            scripted.errors.append(e)
            self._error(500, f"scripted answer failed: {e!r}", "scripted_answer_error")
            return
        prompt_tokens = sum(_words(_text(m.get("content"))) for m in call.messages)
        completion_tokens = sum(_words(c) for c in contents)
        self._json(
            200,
            {
                "id": f"chatcmpl-scripted-{next(scripted._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": call.model,
                "choices": [
                    {"index": i, "message": {"role": "assistant", "content": c}, "finish_reason": "stop"}
                    for i, c in enumerate(contents)
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )


def _parse_call(raw: bytes, headers) -> Call:
    try:
        body = json.loads(raw)
    except ValueError:
        raise _BadRequest("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise _BadRequest("the request body must be a JSON object")
    model, messages = body.pop("model", None), body.pop("messages", None)
    if not isinstance(model, str):
        raise _BadRequest("'model' (a string) is required")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise _BadRequest("'messages' (a list of objects) is required")
    if body.get("stream"):
        raise _BadRequest("streaming is not supported by ScriptedServer")
    return Call(model, messages, body, {k.lower(): v for k, v in headers.items()})


class ScriptedServer:
    """Answers ``POST /v1/chat/completions`` with ``answer(call) -> str | list[str]`` (a list: one
    answer per choice, its length must equal ``n``; a string: the same answer repeated ``n`` times).
    Also ``GET /v1/models`` -> ``{"data": [{"id": model}]}``.

    ``calls`` holds every chat request whose body parsed, in arrival order, including the ones that
    got an injected failure or a 401 (malformed bodies get a 400 and are not recorded). An exception
    raised by ``answer`` (or a wrong-length list) gives the client a 500 and lands in ``errors``.
    """

    def __init__(
        self,
        answer: Callable[[Call], str | list[str]],
        *,
        model: str = "scripted",
        api_key: str | None = None,
    ):
        self.answer, self.model, self.api_key = answer, model, api_key
        self.calls: list[Call] = []
        self.errors: list[Exception] = []
        self._lock = threading.Lock()
        self._failures: list[tuple[str, dict]] = []
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self) -> ScriptedServer:
        if self._httpd is not None:
            raise RuntimeError("ScriptedServer already started (it cannot be restarted)")
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.scripted = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="scripted-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None or self._stopping.is_set():
            return
        self._stopping.set()  # wakes requests sleeping in a "timeout" failure
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # idle keep-alive connections would otherwise linger
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("ScriptedServer not started")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (once started)."""
        return f"http://127.0.0.1:{self.port}/v1"

    # ---- scripting ------------------------------------------------------------------------------
    def fail_next(self, kind: str, times: int = 1, **opts) -> None:
        """Make the next ``times`` chat requests (in order of arrival, after any failures already
        queued) fail as ``kind``:

        - ``"429"``: HTTP 429, a JSON error body and ``Retry-After: <retry_after>`` (default 0)
        - ``"500"``: HTTP 500 with a JSON error body
        - ``"timeout"``: sleep ``seconds`` (default 5), then answer normally
        - ``"malformed"``: HTTP 200 whose body is not JSON
        - ``"no_choices"``: HTTP 200 JSON without ``"choices"``
        - ``"drop"``: close the connection without any response

        A request refused with 401 does not use up a failure.
        """
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}; one of {sorted(FAILURE_KINDS)}")
        unknown = set(opts) - FAILURE_KINDS[kind]
        if unknown:
            raise TypeError(f"fail_next({kind!r}) takes no option(s) {sorted(unknown)}")
        if not isinstance(times, int) or times < 0:
            raise ValueError(f"times must be a non-negative integer, got {times!r}")
        with self._lock:
            self._failures.extend((kind, dict(opts)) for _ in range(times))

    @property
    def pending_failures(self) -> list[str]:
        """The kinds of the injected failures not used yet, next first."""
        with self._lock:
            return [kind for kind, _ in self._failures]

    # ---- used by the handler --------------------------------------------------------------------
    def _record(self, call: Call, *, authorized: bool) -> tuple[str, dict] | None:
        """Append ``call`` and, for an authorized request, take the next injected failure: both
        under one lock, so failures go to requests in the order they were recorded."""
        with self._lock:
            failure = self._failures.pop(0) if authorized and self._failures else None
            call.failure = failure[0] if failure else None
            self.calls.append(call)
            return failure

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)
