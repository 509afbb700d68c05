"""The one client for an LLM judge, used by the `judge` eval task (`tuneforge.eval.tasks.judge`) and the
judge reward of grpo/ppo (`tuneforge.rewards.judge`); each of them writes its own prompt and reads its
own score out of the replies, this module only gets the replies.

A judge is either an OpenAI-compatible chat.completions endpoint (plain HTTP with the standard library,
so no client package is needed; greedy, one call per prompt) or a local model folder, loaded once per
process like any tuneforge model and prompted with its own chat template. Failures are a `ModelError`
naming the endpoint or folder and the fix.

A config names the environment variable holding the endpoint's key (``api_key_env``), and a config
may come from someone else, so only variables meant as API keys are read: names ending in
``_API_KEY`` (upper case, e.g. OPENAI_API_KEY), or names listed, comma-separated, in
``$TUNEFORGE_ALLOWED_KEY_ENV``. Before the first request the endpoint's host and the variable are
logged once (INFO, logger "tuneforge"): ``judge: sending requests to HOST (key from $NAME)``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request

from tuneforge.errors import ConfigError, ModelError

log = logging.getLogger("tuneforge")

ALLOWED_KEY_ENV = "TUNEFORGE_ALLOWED_KEY_ENV"
_KEY_NAME = re.compile(r"[A-Z][A-Z0-9_]*_API_KEY")
_announced: set[tuple[str, str | None]] = set()


def check_key_env(name: str, where: str) -> None:
    """A ConfigError unless ``name`` may be read as an API key (see the module docstring)."""
    allowed = {n.strip() for n in os.environ.get(ALLOWED_KEY_ENV, "").split(",") if n.strip()}
    if _KEY_NAME.fullmatch(name) or name in allowed:
        return
    raise ConfigError(
        f"{where} {name!r}: only environment variables named like OPENAI_API_KEY (ending in _API_KEY) are "
        f"sent to a judge; use such a name, or allow this one with {ALLOWED_KEY_ENV}={name} (comma-separated)"
    )


def read_api_key(name: str | None, where: str) -> str | None:
    """The key in ``$name`` (None when unset or empty), after `check_key_env`."""
    if not name:
        return None
    check_key_env(name, where)
    return os.environ.get(name) or None


def announce(endpoint: str, key_env: str | None, key: str | None, who: str = "judge") -> None:
    """Say once per process which host the judge's (or ``who``'s) requests, and which key, go to."""
    if (endpoint, key_env if key else None) in _announced:
        return
    _announced.add((endpoint, key_env if key else None))
    parts = urllib.parse.urlsplit(endpoint)
    host = parts.hostname or endpoint
    try:
        host += f":{parts.port}" if parts.port else ""
    except ValueError:  # a malformed port: the request itself will say so
        pass
    if key:
        log.info("%s: sending requests to %s (key from $%s)", who, host, key_env)
    elif key_env:
        log.info("%s: sending requests to %s (no API key: $%s is not set)", who, host, key_env)
    else:
        log.info("%s: sending requests to %s (no API key)", who, host)


def ask(
    prompts: list[str],
    *,
    endpoint: str | None,
    model: str,
    api_key_env: str | None = None,
    where: str = "api_key_env",
    max_tokens: int,
    timeout: float = 60.0,
    batch_size: int = 8,
    progress: str | None = None,
) -> list[str]:
    """The judge's reply to each prompt: ``endpoint`` (a base URL such as http://host:8000/v1) with the model
    name ``model`` and the key in ``$api_key_env`` (``where`` names that setting in errors), or, without an
    endpoint, the local model folder ``model``. ``progress`` names a progress bar over the endpoint calls."""
    if endpoint is None:
        return ask_local(model, prompts, max_tokens=max_tokens, batch_size=batch_size)
    api_key = read_api_key(api_key_env, where)
    announce(endpoint, api_key_env, api_key)
    if progress:
        from tqdm.auto import tqdm

        prompts = tqdm(prompts, desc=progress, unit="call")
    return [
        ask_endpoint(endpoint, model, p, api_key=api_key, max_tokens=max_tokens, timeout=timeout)
        for p in prompts
    ]


def ask_endpoint(
    base_url: str, model: str, prompt: str, *, api_key: str | None, max_tokens: int, timeout: float
) -> str:
    """One greedy chat.completions call; returns the reply text."""
    url = base_url.rstrip("/") + "/chat/completions"
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": max_tokens,
    }
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace")[:200]
        raise ModelError(
            f"judge endpoint {url} answered HTTP {e.code}: {detail}; check the judge model name and the API key"
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ModelError(
            f"judge endpoint {url} cannot be reached ({reason}): unreachable from here; start the server or "
            "fix the URL"
        ) from None
    except json.JSONDecodeError:
        raise ModelError(
            f"judge endpoint {url} did not answer JSON; is it an OpenAI-compatible /v1 URL?"
        ) from None
    try:
        return str(data["choices"][0]["message"]["content"] or "")
    except (KeyError, IndexError, TypeError):
        raise ModelError(
            f"judge endpoint {url} answered without choices[0].message.content: {str(data)[:200]}"
        ) from None


@functools.lru_cache(maxsize=2)
def load_local(path: str):
    """(model, tokenizer) of a local judge, frozen, loaded once per process."""
    from tuneforge.config.schema import ModelConfig
    from tuneforge.methods import METHODS
    from tuneforge.models.load import load_model, load_tokenizer

    cfg = ModelConfig(name_or_path=path)
    try:
        tokenizer = load_tokenizer(cfg)
        model = load_model(cfg, METHODS.get("full").Config())
    except Exception as e:  # a judge path may be wrong in many ways; say which folder, and why
        raise ModelError(f"cannot load a judge model from {path!r}: {type(e).__name__}: {e}") from e
    model.requires_grad_(False)
    return model.eval(), tokenizer


def ask_local(path: str, prompts: list[str], *, max_tokens: int, batch_size: int = 8) -> list[str]:
    """Greedy replies of the local judge model ``path`` with its own chat template."""
    from tuneforge.inference.generate import generate_answers

    model, tokenizer = load_local(path)
    stops = (tokenizer.eos_token,) if tokenizer.eos_token else ()
    return generate_answers(
        model,
        tokenizer,
        [[{"role": "user", "content": p}] for p in prompts],
        stop_tokens=stops,
        max_new_tokens=max_tokens,
        batch_size=batch_size,
    )
