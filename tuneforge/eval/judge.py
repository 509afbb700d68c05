"""Talking to an LLM judge: any OpenAI-compatible chat.completions endpoint (plain HTTP with the
standard library, so no client package is needed), or a local model loaded like any tuneforge model
and prompted with its own chat template. Used by the `judge` task."""

from __future__ import annotations

import functools
import json
import os
import urllib.error
import urllib.request

from tuneforge.errors import ModelError


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
            f"judge endpoint {url} answered HTTP {e.code}: {detail}; check judge_model and the API key"
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ModelError(
            f"judge endpoint {url} is unreachable ({reason}); start the server or fix `endpoint`"
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
def _local_judge(path: str):
    from tuneforge.config.schema import ModelConfig
    from tuneforge.methods import METHODS
    from tuneforge.models.load import load_model, load_tokenizer

    cfg = ModelConfig(name_or_path=path)
    tokenizer = load_tokenizer(cfg)
    model = load_model(cfg, METHODS.get("full").Config()).eval()
    return model, tokenizer


def ask_local(path: str, prompts: list[str], *, max_tokens: int, batch_size: int) -> list[str]:
    """Greedy replies of a local judge model (loaded once per process) with its own chat template."""
    from tuneforge.generate import generate_answers

    model, tokenizer = _local_judge(path)
    stops = (tokenizer.eos_token,) if tokenizer.eos_token else ()
    return generate_answers(
        model,
        tokenizer,
        [[{"role": "user", "content": p}] for p in prompts],
        stop_tokens=stops,
        max_new_tokens=max_tokens,
        batch_size=batch_size,
    )


def ask(cfg, prompts: list[str]) -> list[str]:
    """Replies of the task's judge (`cfg.endpoint` + `cfg.judge_model`, or the local `cfg.judge_model`)."""
    from tqdm.auto import tqdm

    if cfg.endpoint is None:
        return ask_local(cfg.judge_model, prompts, max_tokens=cfg.judge_max_tokens, batch_size=cfg.batch_size)
    key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
    return [
        ask_endpoint(
            cfg.endpoint,
            cfg.judge_model,
            p,
            api_key=key,
            max_tokens=cfg.judge_max_tokens,
            timeout=cfg.timeout,
        )
        for p in tqdm(prompts, desc=f"{cfg.key}: judging", unit="call")
    ]
