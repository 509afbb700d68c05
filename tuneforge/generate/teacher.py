"""The teacher that writes generated data: an OpenAI-compatible endpoint (plain HTTP with the
standard library; bounded concurrency; retries with exponential backoff on 429, 5xx, timeouts and
unreadable replies, honouring Retry-After; seed, temperature, top_p and n passed through; token
counts recorded) or a local model loaded in this process (`tuneforge.inference.load`: an HF folder,
a GGUF file, a run folder). Every answered call goes to the call cache (`tuneforge.generate.cache`)
first thing, so nothing is asked twice.

A call that still fails after its retries comes back with ``error`` set (counted, its samples
lost); a reply the endpoint refuses for good (401, 404, 400: a wrong key, model name or URL) stops
the run with a `ModelError` naming the fix.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tuneforge.errors import ModelError
from tuneforge.generate.cache import CallCache, cache_root, call_key
from tuneforge.generate.config import TeacherConfig

log = logging.getLogger("tuneforge")
RETRIED = {408, 409, 425, 429, 500, 502, 503, 504}


@dataclass
class Ask:
    """One teacher call: a conversation, how many answers, and the call's place in its step (its
    seed is the teacher's seed + ``index``, so a rerun asks exactly the same)."""

    messages: list[dict]
    index: int = 0
    n: int = 1
    temperature: float | None = None  # None: the teacher's


@dataclass
class Reply:
    texts: list[str]
    seed: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    error: str | None = None


@dataclass
class Usage:
    calls: int = 0
    cached: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    by_step: dict = field(default_factory=dict)


class Teacher:
    def __init__(self, cfg: TeacherConfig, cache_dir: str | None = None, name: str = "teacher"):
        from tuneforge.inference.judge import announce, read_api_key

        self.cfg, self.name = cfg, name
        self.identity = {"base_url": cfg.base_url, "model": cfg.model, "max_tokens": cfg.max_tokens}
        self.cache = CallCache(cache_root(cache_dir) / call_key(self.identity, [], {})[:16])
        self.usage = Usage()
        self._key = read_api_key(cfg.api_key_env, f"{name}.api_key_env") if cfg.base_url else None
        if cfg.base_url:
            announce(cfg.base_url, cfg.api_key_env, self._key, who=name)  # where the data's prompts go
        self._local = None

    def params(self, ask: Ask) -> dict:
        temperature = self.cfg.temperature if ask.temperature is None else ask.temperature
        return {
            "n": ask.n,
            "temperature": temperature,
            "top_p": self.cfg.top_p,
            "seed": self.cfg.seed + ask.index,
            **({"stop": list(self.cfg.stop)} if self.cfg.stop else {}),  # absent: older cache keys hold
        }

    def ask(self, asks: list[Ask], step: str) -> list[Reply]:
        """The replies to ``asks``, in order: cached ones at once, the rest from the teacher."""
        from tqdm.auto import tqdm

        replies: list[Reply | None] = [None] * len(asks)
        todo = []
        for i, a in enumerate(asks):
            key = call_key(self.identity, a.messages, self.params(a))
            hit = self.cache.get(key)
            if hit is not None:
                u = hit.get("usage", {})
                replies[i] = Reply(
                    hit["texts"], self.params(a)["seed"], u.get("prompt", 0), u.get("completion", 0), True
                )
            else:
                todo.append((i, a, key))
        bar = tqdm(total=len(asks), initial=len(asks) - len(todo), desc=f"{step} ({self.name})", unit="call")
        written = 0  # tokens the teacher wrote in this step so far, shown beside the call rate

        def done(pairs) -> None:
            nonlocal written
            for i, reply in pairs:
                replies[i] = reply
                written += reply.completion_tokens
            bar.update(len(pairs))
            bar.set_postfix(tokens_out=written)

        if todo:
            if self.cfg.base_url:
                with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
                    for i, reply in pool.map(lambda t: (t[0], self._endpoint(t[1], t[2])), todo):
                        done([(i, reply)])
            else:
                for start in range(0, len(todo), self.cfg.batch_size):
                    chunk = todo[start : start + self.cfg.batch_size]
                    done([(c[0], r) for c, r in zip(chunk, self._local_batch(chunk), strict=True)])
        bar.close()
        self._count(step, replies)
        return replies  # type: ignore[return-value]

    def _count(self, step: str, replies: list[Reply]) -> None:
        u, s = (
            self.usage,
            self.usage.by_step.setdefault(step, {"calls": 0, "cached": 0, "failed": 0, "tokens": 0}),
        )
        for r in replies:
            u.calls += 1
            s["calls"] += 1
            u.cached += r.cached
            s["cached"] += r.cached
            u.failed += r.error is not None
            s["failed"] += r.error is not None
            u.prompt_tokens += r.prompt_tokens
            u.completion_tokens += r.completion_tokens
            s["tokens"] += r.prompt_tokens + r.completion_tokens

    # -- an OpenAI-compatible endpoint

    def _endpoint(self, ask: Ask, key: str) -> Reply:
        params = self.params(ask)
        url = self.cfg.base_url.rstrip("/") + "/chat/completions"
        body = {
            "model": self.cfg.model,
            "messages": ask.messages,
            "max_tokens": self.cfg.max_tokens,
            **params,
        }
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        error = ""
        for attempt in range(self.cfg.retries + 1):
            if attempt:
                self.usage.retries += 1
            wait = self.cfg.backoff_s * 2**attempt
            try:
                request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.cfg.timeout_s) as response:
                    data = json.loads(response.read().decode("utf-8"))
                texts = [str(c["message"]["content"] or "") for c in data["choices"]]
            except urllib.error.HTTPError as e:
                detail = e.read().decode("utf-8", "replace")[:200]
                if e.code not in RETRIED:
                    raise ModelError(
                        f"{self.name} endpoint {url} answered HTTP {e.code}: {detail}; check {self.name}.model, "
                        f"{self.name}.base_url and the key in {self.name}.api_key_env"
                    ) from None
                error = f"HTTP {e.code}"
                wait = _retry_after(e, wait)
            except (urllib.error.URLError, TimeoutError, OSError) as e:
                error = f"cannot be reached ({getattr(e, 'reason', e)})"
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError):
                error = "the reply is not an OpenAI chat.completion"
            else:
                usage = data.get("usage") or {}
                reply = Reply(
                    texts if len(texts) == ask.n else (texts * ask.n)[: ask.n],
                    params["seed"],
                    int(usage.get("prompt_tokens") or 0),
                    int(usage.get("completion_tokens") or 0),
                )
                self.cache.put(
                    key, reply.texts, {"prompt": reply.prompt_tokens, "completion": reply.completion_tokens}
                )
                return reply
            if attempt < self.cfg.retries:
                time.sleep(wait)
        log.warning("%s: a call to %s failed after %d tries: %s", self.name, url, self.cfg.retries + 1, error)
        return Reply([], params["seed"], error=error)

    # -- a local model

    def _local_batch(self, chunk: list[tuple[int, Ask, str]]) -> list[Reply]:
        """One generate for the chunk, drawn from its first call's seed (the chunk is the same on a
        rerun, and answered calls are cached): calls at another temperature go on their own."""
        from tuneforge.inference.generate import Sampling, generate_answers

        first = self.params(chunk[0][1])
        if any(self.params(a)["temperature"] != first["temperature"] for _, a, _ in chunk[1:]):
            return [r for c in chunk for r in self._local_batch([c])]
        target = self._load()
        greedy = first["temperature"] == 0
        sampling = Sampling(
            first["temperature"], 1.0 if greedy else first["top_p"], None if greedy else first["seed"]
        )
        texts = generate_answers(
            target.model,
            target.tokenizer,
            [a.messages for _, a, _ in chunk for _ in range(a.n)],
            chat_template=target.chat_template,
            stop_tokens=target.stop_tokens,
            max_new_tokens=self.cfg.max_tokens,
            batch_size=self.cfg.batch_size,
            sampling=sampling,
            stop_strings=self.cfg.stop,
        )
        tok, out, at = target.tokenizer, [], 0
        for _, ask, key in chunk:
            mine, at = texts[at : at + ask.n], at + ask.n
            prompt = sum(len(tok(m.get("content") or "")["input_ids"]) for m in ask.messages)
            completion = sum(len(tok(t)["input_ids"]) for t in mine)
            self.cache.put(key, mine, {"prompt": prompt, "completion": completion})
            out.append(Reply(mine, self.params(ask)["seed"], prompt, completion))
        return out

    def _load(self):
        if self._local is None:
            import io

            from tuneforge.inference.load import load_chat_model

            log.info("%s: loading %s", self.name, self.cfg.model)
            self._local = load_chat_model(self.cfg.model, out=io.StringIO())
        return self._local


def _retry_after(e: urllib.error.HTTPError, default: float) -> float:
    try:
        return max(0.0, float(e.headers.get("Retry-After", default)))
    except (TypeError, ValueError):
        return default
