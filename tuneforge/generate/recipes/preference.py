"""`preference`: k answers sampled per prompt, each scored (by the teacher as the filters' judge with a rubric,
or by a programmatic check), the best kept as chosen and the worst as rejected, for rm / dpo /
orpo / simpo (a prompt whose answers all score the same makes no pair). KTO reads the same rows
after `tuneforge` splits them (chosen: desirable, rejected: undesirable)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.generate.recipes._base import PromptsConfig, Sample

DESCRIPTION = "k answers per prompt scored; the best and the worst as a chosen / rejected pair"


class Config(PromptsConfig):
    name: Literal["preference"] = "preference"
    k: int = Field(4, ge=2, le=32, description="Answers sampled per prompt.")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature of the k answers.")
    score: Literal["judge", "verify"] = Field(
        "judge",
        description="judge: the teacher rates each answer by the rubric; verify: filters.verify's function.",
    )
    rubric: str = Field("Is the answer correct, helpful and concise?", description="What the judge rates by.")


def run(cfg: Config, ctx) -> list:
    prompts = ctx.read_prompts(cfg.prompts, cfg.column, "recipe.prompts")[: cfg.limit]
    users = [ctx.render(cfg.answer_prompt, prompt=p) for p in prompts]
    replies = ctx.ask(users, "sample answers", n=cfg.k, temperature=cfg.temperature)
    pairs = [(p, a) for p, r in zip(prompts, replies, strict=True) for a in r.texts]
    if cfg.score == "judge":
        from tuneforge.generate.config import JudgeConfig
        from tuneforge.generate.filters import judge_scores

        scores = judge_scores(ctx, JudgeConfig(rubric=cfg.rubric, scale="1-5"), pairs)  # the filters' judge
    else:
        verify = ctx.verifier()
        scores = [float(bool(verify(p, a))) for p, a in pairs]
    samples, at = [], 0
    for prompt, reply in zip(prompts, replies, strict=True):
        mine = [
            (s, a)
            for s, (_, a) in zip(
                scores[at : at + len(reply.texts)], pairs[at : at + len(reply.texts)], strict=True
            )
            if s is not None
        ]
        at += len(reply.texts)
        if len(mine) < 2 or max(mine)[0] == min(mine)[0]:
            ctx.stats["preference: no pair (answers scored alike)"] += 1
            continue
        best, worst = max(mine, key=lambda x: x[0]), min(mine, key=lambda x: x[0])
        prov = {
            **ctx.provenance("sample answers", reply, cfg.answer_prompt),
            "chosen_score": best[0],
            "rejected_score": worst[0],
        }
        samples.append(Sample(ctx.conversation(prompt), chosen=best[1], rejected=worst[1], provenance=prov))
    return samples
