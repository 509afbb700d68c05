"""Helpers for server tests: raw HTTP on loopback (stdlib only), a scripted backend, and a fake run
folder (no training) for the checks that come before any weights load."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tuneforge.serve.backends import Generation, Outcome


def http(
    url: str,
    body: bytes | dict | None = None,
    *,
    key: str | None = None,
    method: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
):
    """(status, headers, parsed JSON body, or the text of a body that is not JSON) for one request;
    never raises on HTTP errors."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"))
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), _decoded(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), _decoded(e.read())


def _decoded(raw: bytes):
    try:
        return json.loads(raw or b"null")
    except ValueError:  # e.g. a plain-text 503 from the HTTP server itself
        return raw.decode("utf-8", "replace")


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


def write_fake_run(run_dir, model_dir, *, artifact: str = "adapter", **model) -> Path:
    """A finished-looking run folder over ``model_dir`` without training: config.yaml (``model``
    entries go into its model section), manifest.json, tokenizer/, and model/ (a copy of
    ``model_dir``) for ``artifact="full"``. Enough for read_run and the load paths before weights."""
    import shutil

    import yaml
    from transformers import AutoTokenizer

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True)
    method = {"name": "lora", "r": 4, "lora_alpha": 8} if artifact == "adapter" else {"name": "full"}
    config = {
        "model": {"name_or_path": str(model_dir), **model},
        "data": {"datasets": [{"path": str(run_dir / "d.json"), "format": "alpaca"}]},
        "method": method,
        "output": {"dir": str(run_dir)},
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    manifest = {"artifact": artifact, "method": method["name"], "stop_tokens": ["<|im_end|>"]}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(run_dir / "tokenizer")
    if artifact == "full":
        shutil.copytree(model_dir, run_dir / "model")
    return run_dir
