"""An LLM judge as a `grpo` / `ppo` reward (RLAIF): each completion is shown to a judge model with the question
(and the reference answer when the data has one) and scored from 0 to 10; the reward is score / 10.

The judge is either an OpenAI-compatible endpoint (``judge: http://host:port/v1``, the API key from the
environment variable ``api_key_env``: a name ending in _API_KEY, or one listed in
$TUNEFORGE_ALLOWED_KEY_ENV) or a local causal-LM folder; `tuneforge.inference.judge`, the client the
`judge` eval task uses too, gets the replies.
The score is the last number in the judge's reply (`tuneforge.eval.metrics.extract_number`); a reply without a
number gives None (the judge's reward is left out for that completion) and is counted in a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tuneforge.errors import ConfigError, ModelError, TrainingError
from tuneforge.eval.metrics import extract_number
from tuneforge.inference import judge as client

log = logging.getLogger(__name__)

DEFAULT_PROMPT = (
    "Rate how well the answer responds to the question, from 0 (wrong or useless) to 10 (fully correct "
    "and helpful). Reply with the number only.\n\nQuestion: {question}\n{reference}Answer: {completion}"
)
TIMEOUT_S = 60
MAX_TOKENS = 8  # the reply is a number


def make_judge(spec, where: str) -> Callable:
    template = spec.judge_prompt or DEFAULT_PROMPT
    try:
        template.format(question="q", answer="a", completion="c", reference="")
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigError(
            f"{where}.judge_prompt: bad placeholder {e}; use {{question}}, {{answer}}, {{completion}}"
        ) from e
    key_where = f"{where}.api_key_env"
    if spec.judge.startswith(("http://", "https://")):
        endpoint, model, key_env = spec.judge.rstrip("/"), spec.judge_model, spec.api_key_env
        client.check_key_env(key_env, key_where)  # now, so a wrong name stops the run before training
    else:
        endpoint, model, key_env = None, spec.judge, None
        try:
            client.load_local(model)  # now, so a wrong folder stops the run before training
        except ModelError as e:
            raise ConfigError(f"{where}.judge: {e}") from e

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
        try:
            replies = client.ask(
                prompts,
                endpoint=endpoint,
                model=model,
                api_key_env=key_env,
                where=key_where,
                max_tokens=MAX_TOKENS,
                timeout=TIMEOUT_S,
            )
        except ModelError as e:  # during training: a TrainingError, one line like every reward failure
            raise TrainingError(str(e)) from e
        scores = [score_reply(r) for r in replies]
        if None in scores:
            log.warning("judge: %d of %d replies had no score", scores.count(None), len(scores))
        return scores

    return judge


def score_reply(reply: str) -> float | None:
    """The last number of the reply, clamped to 0..10, divided by 10."""
    number = extract_number(reply or "")
    return None if number is None else min(max(float(number), 0.0), 10.0) / 10.0
