"""The filters a generated sample passes before de-duplication (`tuneforge data generate`), in
order, each drop counted under its reason: answer length, conversation turns, refusal patterns,
JSON validity and schema, programmatic verification (a user's ``FILE.py:FUNCTION``), a reward
model's score, and an LLM judge with a rubric and a threshold. The judge can first be checked
against a small human-rated file (`calibrate`): how often it keeps and drops what the people did."""

from __future__ import annotations

import re
from collections import Counter

from tqdm.auto import tqdm

from tuneforge.errors import ConfigError
from tuneforge.generate.config import FiltersConfig, JudgeConfig, RewardModelFilter
from tuneforge.generate.context import Context, fits, parse_json
from tuneforge.generate.recipes._base import Sample

SCORE_PROMPT = (
    "Rate the answer to the request on a scale of 1 to 5 by this rubric: {{ rubric }}\n\n"
    "Request: {{ prompt }}\n\nAnswer: {{ answer }}\n\n"
    'Answer with JSON {"score": N} and nothing else.'
)
VERDICT_PROMPT = (
    "Judge the answer to the request by this rubric: {{ rubric }}\n\n"
    "Request: {{ prompt }}\n\nAnswer: {{ answer }}\n\n"
    'Answer with JSON {"verdict": "PASS"} or {"verdict": "FAIL"} and nothing else.'
)
SCORE_SCHEMA = {"type": "object", "properties": {"score": {"type": "number"}}, "required": ["score"]}
VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"verdict": {"enum": ["PASS", "FAIL", "pass", "fail"]}},
    "required": ["verdict"],
}


def apply_filters(
    samples: list[Sample], cfg: FiltersConfig, ctx: Context, judge_ctx: Context | None
) -> tuple[list[Sample], Counter]:
    """The samples that pass every filter, and how many each filter dropped."""
    dropped: Counter = Counter()
    refusals = [re.compile(p, re.IGNORECASE) for p in cfg.refusals]
    verify = ctx.verifier() if cfg.verify else None
    kept = []
    with tqdm(samples, desc="filters", unit="sample") as bar:
        for seen, s in enumerate(bar, 1):
            reason = _reason(s, cfg, refusals, verify)
            if reason:
                dropped[reason] += 1
            else:
                kept.append(s)
            bar.set_postfix(kept=f"{len(kept)} ({len(kept) / seen:.0%})", refresh=False)
    if cfg.reward_model is not None and kept:
        scores = reward_scores(cfg.reward_model, [(s.prompt, s.answer) for s in kept])
        passed = []
        for s, score in zip(kept, scores, strict=True):
            if score < cfg.reward_model.threshold:
                dropped[f"reward model: below {cfg.reward_model.threshold:g}"] += 1
            else:
                s.provenance["reward_score"] = round(score, 4)
                passed.append(s)
        kept = passed
    if cfg.judge is not None and kept:
        scores = judge_scores(judge_ctx or ctx, cfg.judge, [(s.prompt, s.answer) for s in kept])
        passed = []
        for s, score in zip(kept, scores, strict=True):
            if score is None:
                dropped["judge: no score"] += 1
            elif not passes(score, cfg.judge):
                dropped[f"judge: below {cfg.judge.threshold:g}"] += 1
            else:
                s.provenance["judge_score"] = score
                passed.append(s)
        kept = passed
    return kept, dropped


def _reason(s: Sample, cfg: FiltersConfig, refusals, verify) -> str | None:
    answer = s.answer
    turns = sum(m["role"] != "system" for m in s.messages) + (1 if s.chosen is not None else 0)
    if len(answer) < cfg.min_chars:
        return f"answer shorter than {cfg.min_chars} characters"
    if cfg.max_chars and len(answer) > cfg.max_chars:
        return f"answer longer than {cfg.max_chars} characters"
    if turns < cfg.min_turns or (cfg.max_turns and turns > cfg.max_turns):
        return "number of turns out of bounds"
    if any(r.search(answer) for r in refusals):
        return "refusal"
    if cfg.answer_json or cfg.answer_schema:
        value = parse_json(answer)
        if value is None:
            return "answer is not JSON"
        if cfg.answer_schema and not fits(value, cfg.answer_schema):
            return "answer does not fit answer_schema"
    if verify is not None:
        try:
            ok = verify(s.prompt, answer)
        except Exception as e:  # the user's function: a failure drops the sample, counted by its error
            return f"verify raised {type(e).__name__}"
        if not ok:
            return "verify said no"
    return None


def reward_scores(cfg: RewardModelFilter, pairs: list[tuple[str, str]]) -> list[float]:
    """The reward model's score of each (prompt, answer), the conversation rendered with the
    model's own chat template (plain "prompt\nanswer" where it has none)."""
    from tuneforge.rewards.reward_model import load_reward_model
    from tuneforge.rewards.score import score_completions

    model, tok = load_reward_model(cfg.model, "filters.reward_model")
    texts = []
    for prompt, answer in pairs:
        if getattr(tok, "chat_template", None):
            conv = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
            texts.append(tok.apply_chat_template(conv, tokenize=False))
        else:
            texts.append(f"{prompt}\n{answer}")
    out: list[float] = []
    for start in tqdm(range(0, len(texts), cfg.batch_size), desc="reward model", unit="batch"):
        chunk = texts[start : start + cfg.batch_size]
        total, _ = score_completions([model], [tok], [1.0], chunk, [""] * len(chunk), [[]] * len(chunk), {})
        out += total.tolist()
    return out


def judge_scores(ctx: Context, judge: JudgeConfig, pairs: list[tuple[str, str]]) -> list[float | None]:
    """The judge's score of each (prompt, answer): 1-5, or 1 / 0 for PASS / FAIL."""
    template = SCORE_PROMPT if judge.scale == "1-5" else VERDICT_PROMPT
    schema = SCORE_SCHEMA if judge.scale == "1-5" else VERDICT_SCHEMA
    users = [ctx.render(template, rubric=judge.rubric, prompt=p, answer=a) for p, a in pairs]
    out = []
    for value in ctx.ask_json(users, "judge", schema):
        if value is None:
            out.append(None)
        elif judge.scale == "1-5":
            out.append(float(value["score"]))
        else:
            out.append(1.0 if str(value["verdict"]).upper() == "PASS" else 0.0)
    return out


def passes(score: float, judge: JudgeConfig) -> bool:
    return score >= (judge.threshold if judge.scale == "1-5" else 1.0)


def calibrate(ctx: Context, judge: JudgeConfig, path: str) -> dict:
    """The judge on a human-rated file (JSON / JSONL rows of prompt, answer, score: 1-5 or
    PASS / FAIL): how often its keep / drop decision matches the people's, and its mean absolute
    error on a 1-5 scale."""
    from tuneforge.eval.tasks.generate import read_rows

    rows = read_rows(path, ("prompt", "answer", "score"), "filters.judge.calibration")
    if not rows:
        raise ConfigError(f"filters.judge.calibration: {path} has no rows")
    human = [_human_score(r["score"], judge, path) for r in rows]
    model = judge_scores(ctx, judge, [(str(r["prompt"]), str(r["answer"])) for r in rows])
    scored = [(h, m) for h, m in zip(human, model, strict=True) if m is not None]
    agree = sum(passes(h, judge) == passes(m, judge) for h, m in scored)
    report = {"rows": len(rows), "judged": len(scored), "agreement": agree / len(scored) if scored else 0.0}
    if judge.scale == "1-5" and scored:
        report["mean_abs_error"] = sum(abs(h - m) for h, m in scored) / len(scored)
    return report


def _human_score(value, judge: JudgeConfig, path: str) -> float:
    if judge.scale == "pass_fail":
        if str(value).upper() in ("PASS", "FAIL"):
            return 1.0 if str(value).upper() == "PASS" else 0.0
        raise ConfigError(f"filters.judge.calibration: {path}: a score of {value!r}; use PASS or FAIL")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"filters.judge.calibration: {path}: a score of {value!r}; use 1 to 5") from None
