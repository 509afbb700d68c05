"""`tuneforge data generate RECIPE.yaml`, top to bottom: the recipe asks the teacher (every call
cached, so a rerun or a resumed run asks nothing twice), the samples pass the filters (the judge
first checked against people's ratings where a file of them is given), then decontamination
against the eval data the recipe names, exact and near de-duplication, and the kept samples are
written with their card, statistics and registry entry (`tuneforge.generate.output`)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

from tuneforge.errors import ConfigError, DataError
from tuneforge.generate.config import GenerateConfig
from tuneforge.generate.context import Context
from tuneforge.generate.filters import apply_filters, calibrate
from tuneforge.generate.output import check_target, write
from tuneforge.generate.recipes import RECIPES
from tuneforge.generate.teacher import Teacher

log = logging.getLogger("tuneforge")
EVAL_FIELDS = ("prompt", "question", "instruction", "input", "query")


def load_recipe(path: str | None, overrides: list[str] = (), data: dict | None = None) -> GenerateConfig:
    from tuneforge.config.load import validate_as
    from tuneforge.config.raw import read_raw

    return validate_as(GenerateConfig, read_raw(path, list(overrides), data), str(path or "recipe"))


def generate(cfg: GenerateConfig) -> dict:
    """Run the recipe; returns the statistics written beside the data."""
    check_target(Path(cfg.output.path), cfg.output.overwrite)
    teacher = Teacher(cfg.teacher, cfg.cache_dir)
    ctx = Context(teacher, cfg.recipe.system, cfg.filters.verify)
    judge = cfg.filters.judge
    judge_ctx = (
        Context(Teacher(judge.teacher, cfg.cache_dir, name="judge")) if judge and judge.teacher else None
    )
    calibration = None
    if judge and judge.calibration:
        calibration = calibrate(judge_ctx or ctx, judge, judge.calibration)
        log.info(
            "judge: agrees with the people on %.0f%% of %d rows",
            100 * calibration["agreement"],
            calibration["judged"],
        )
        if judge.min_agreement and calibration["agreement"] < judge.min_agreement:
            raise ConfigError(
                f"filters.judge: it agrees with {judge.calibration} on {calibration['agreement']:.0%} of rows, "
                f"under min_agreement {judge.min_agreement:.0%}; change the rubric, the judge or the threshold"
            )
    samples = RECIPES.get(cfg.recipe.name).run(cfg.recipe, ctx)
    generated = len(samples)
    kept, dropped = apply_filters(samples, cfg.filters, ctx, judge_ctx)
    kept, more = deduplicate(kept, cfg)
    dropped.update(more)
    lost = Counter(ctx.stats) + (Counter(judge_ctx.stats) if judge_ctx else Counter())
    usage = teacher.usage
    stats = {
        "recipe": cfg.recipe.name,
        "generated": generated,
        "kept": len(kept),
        "dropped": dict(dropped),
        "lost_before_samples": {k: v for k, v in lost.items() if v},
        "teacher": {
            "calls": usage.calls,
            "cached": usage.cached,
            "failed": usage.failed,
            "retries": usage.retries,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "by_step": usage.by_step,
        },
        "judge_calibration": calibration,
    }
    if not kept:
        raise DataError(
            f"data generate: no sample kept of {generated} generated (dropped: "
            f"{', '.join(f'{r} x{n}' for r, n in dropped.most_common()) or 'none'}; lost: "
            f"{', '.join(f'{r} x{n}' for r, n in lost.items() if n) or 'none'}); see the teacher's answers "
            "with a smaller recipe.limit"
        )
    stats["name"] = cfg.output.name or Path(cfg.output.path).stem
    stats["written"] = {k: str(v) for k, v in write(kept, cfg, stats).items()}
    return stats


def deduplicate(samples: list, cfg: GenerateConfig) -> tuple[list, Counter]:
    from tuneforge.generate.dedup import drop_contaminated, drop_exact, drop_near

    d, dropped, kept = cfg.dedup, Counter(), list(samples)
    stages = []
    if d.decontaminate:
        items = eval_items(d.decontaminate)
        stages.append(lambda texts: drop_contaminated(texts, items, n=d.ngram, threshold=d.overlap))
    if d.exact:
        stages.append(drop_exact)
    if d.near != "none":
        stages.append(lambda texts: drop_near(texts, threshold=d.threshold, method=d.near))
    for stage in stages:
        index, gone = stage([s.text for s in kept])
        dropped.update(g.reason for g in gone)
        kept = [kept[i] for i in index]
    return kept, dropped


def eval_items(paths: list[str]) -> list[tuple[str, str]]:
    """(label, text) of every row of the eval files decontamination checks against."""
    items = []
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"dedup.decontaminate: {path} does not exist")
        text = p.read_text(encoding="utf-8")
        rows = (
            json.loads(text)
            if text.lstrip().startswith("[")
            else [json.loads(x) for x in text.splitlines() if x.strip()]
        )
        for n, r in enumerate(rows, 1):
            if isinstance(r, dict):
                fields = [str(r[f]) for f in EVAL_FIELDS if r.get(f)]
                if fields:
                    items.append((f"{p.name} line {n}", " ".join(fields)))
            elif isinstance(r, str):
                items.append((f"{p.name} line {n}", r))
    return items
