"""Helpers for server tests: raw HTTP on loopback (stdlib only) and a scripted backend."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

from tuneforge.serve.backends import Generation, Outcome


def http(url: str, body: bytes | dict | None = None, *, key: str | None = None, method: str | None = None):
    """(status, headers, parsed JSON body) for one request; never raises on HTTP errors."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"))
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"null")


class ScriptedBackend:
    """Answers every request with ``text`` piece by piece (``delay`` seconds apart), honouring
    cancellation: the HTTP layer is tested with known model output."""

    name = "scripted"

    def __init__(self, tokenizer, text: str, delay: float = 0.0, context_length: int = 512):
        self.tokenizer, self.text, self.delay, self.context_length = tokenizer, text, delay, context_length
        self.calls: list[Generation] = []
        self.cancelled = threading.Event()

    def generate(self, job: Generation, emit, cancelled) -> Outcome:
        self.calls.append(job)
        words = self.text.split(" ")
        for i, word in enumerate(words[: job.max_new_tokens]):
            if cancelled():
                self.cancelled.set()
                return Outcome("cancelled", i)
            emit(word if i == 0 else " " + word)
            time.sleep(self.delay)
        return Outcome(
            "stop" if len(words) <= job.max_new_tokens else "length", min(len(words), job.max_new_tokens)
        )
