"""An LLM judge as a `grpo` / `ppo` reward (RLAIF): each completion is shown to a judge model with the question
(and the reference answer when the data has one) and scored from 0 to 10; the reward is score / 10.

The judge is either an OpenAI-compatible endpoint (``judge: http://host:port/v1``; a plain urllib POST to
``/chat/completions``, the API key from the environment variable ``api_key_env`` when set) or a local
causal-LM folder (greedy answers through `tuneforge.generate`, with the judge's own chat template).
The score is the last number in the judge's reply (`tuneforge.metrics.extract_number`); a reply without a
number gives None (the judge's reward is left out for that completion) and is counted in a warning.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable

from tuneforge.errors import ConfigError, TrainingError
from tuneforge.metrics import extract_number

log = logging.getLogger(__name__)

DEFAULT_PROMPT = (
    "Rate how well the answer responds to the question, from 0 (wrong or useless) to 10 (fully correct "
    "and helpful). Reply with the number only.\n\nQuestion: {question}\n{reference}Answer: {completion}"
)
TIMEOUT_S = 60


def make_judge(spec, where: str) -> Callable:
    template = spec.judge_prompt or DEFAULT_PROMPT
    try:
        template.format(question="q", answer="a", completion="c", reference="")
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigError(
            f"{where}.judge_prompt: bad placeholder {e}; use {{question}}, {{answer}}, {{completion}}"
        ) from e
    if spec.judge.startswith(("http://", "https://")):
        ask = _endpoint(spec.judge.rstrip("/"), spec.judge_model, os.environ.get(spec.api_key_env))
    else:
        ask = _local(spec.judge, where)

    def judge(completions: list[str], question: list[str] | None = None, answer: list | None = None, **kw):
        questions = question or [""] * len(completions)
        answers = answer or [None] * len(completions)
        prompts = [
            template.format(
                question=q,
                answer=a or "",
                completion=c,
                reference=f"Reference answer: {a}\n" if a else "",
            )
            for q, a, c in zip(questions, answers, completions, strict=True)
        ]
        scores = [score_reply(r) for r in ask(prompts)]
        if None in scores:
            log.warning("judge: %d of %d replies had no score", scores.count(None), len(scores))
        return scores

    return judge


def score_reply(reply: str) -> float | None:
    """The last number of the reply, clamped to 0..10, divided by 10."""
    number = extract_number(reply or "")
    return None if number is None else min(max(float(number), 0.0), 10.0) / 10.0


def _endpoint(base: str, model: str, api_key: str | None) -> Callable[[list[str]], list[str]]:
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"

    def ask(prompts: list[str]) -> list[str]:
        replies = []
        for p in prompts:
            body = {
                "model": model,
                "messages": [{"role": "user", "content": p}],
                "temperature": 0,
                "max_tokens": 8,
            }
            req = urllib.request.Request(f"{base}/chat/completions", json.dumps(body).encode(), headers)
            try:
                with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
                    data = json.loads(resp.read())
                replies.append(data["choices"][0]["message"]["content"] or "")
            except urllib.error.HTTPError as e:
                raise TrainingError(
                    f"judge {base}: HTTP {e.code} {e.reason}: {e.read()[:200].decode(errors='replace')}"
                ) from e
            except (urllib.error.URLError, TimeoutError, OSError) as e:
                raise TrainingError(
                    f"judge {base} cannot be reached ({e}); start the server or fix the URL"
                ) from e
            except (KeyError, IndexError, TypeError, ValueError) as e:
                raise TrainingError(
                    f"judge {base}: the reply is not an OpenAI chat completion ({type(e).__name__}: {e})"
                ) from e
        return replies

    return ask


def _local(folder: str, where: str) -> Callable[[list[str]], list[str]]:
    from tuneforge.config.schema import ModelConfig
    from tuneforge.generate import generate_answers
    from tuneforge.methods import METHODS
    from tuneforge.models.load import load_model, load_tokenizer

    mcfg = ModelConfig(name_or_path=folder)
    try:
        tok = load_tokenizer(mcfg)
        model = load_model(mcfg, METHODS.get("full").Config())
    except Exception as e:  # what the judge path names may be wrong in many ways; say which key it was
        raise ConfigError(f"{where}.judge: cannot load a judge model from {folder!r}: {e}") from e
    model.requires_grad_(False)
    model.eval()
    eos = (tok.eos_token,) if tok.eos_token else ()

    def ask(prompts: list[str]) -> list[str]:
        convs = [[{"role": "user", "content": p}] for p in prompts]
        return generate_answers(model, tok, convs, stop_tokens=eos, max_new_tokens=8)

    return ask
