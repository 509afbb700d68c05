"""What `tuneforge data generate` writes: the kept samples as JSONL rows in a format tuneforge
trains on (alpaca, sharegpt or OpenAI messages; preference pairs with chosen / rejected), each
with its ``provenance``; ``NAME.card.md`` (the dataset card: recipe, teacher, what each filter and
de-duplication dropped, lengths, topics, teacher calls and tokens); ``NAME.stats.json`` (the same
numbers); and the entry of a dataset registry, so a train config names the data."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tuneforge.artifacts.folder import atomic_write
from tuneforge.errors import ConfigError
from tuneforge.generate.recipes._base import Sample

ROLE = {"user": "human", "assistant": "gpt", "system": "system", "tool": "observation"}


def row(s: Sample, fmt: str) -> dict:
    """One sample in ``fmt``, with its provenance."""
    if s.chosen is not None:  # a preference pair
        if fmt == "openai":
            out = {"messages": s.messages, "chosen": _assistant(s.chosen), "rejected": _assistant(s.rejected)}
        elif fmt == "sharegpt":
            out = {
                "conversations": [
                    {"from": ROLE[m["role"]], "value": m["content"]}
                    for m in s.messages
                    if m["role"] != "system"
                ],
                "chosen": {"from": "gpt", "value": s.chosen},
                "rejected": {"from": "gpt", "value": s.rejected},
                **_system(s),
            }
        else:
            out = {
                "instruction": s.prompt,
                "input": "",
                "chosen": s.chosen,
                "rejected": s.rejected,
                **_system(s),
            }
    elif fmt == "openai" or s.tools:
        out = {"messages": s.messages, **({"tools": s.tools} if s.tools else {})}
    elif fmt == "sharegpt":
        out = {
            "conversations": [
                {"from": ROLE[m["role"]], "value": m["content"]} for m in s.messages if m["role"] != "system"
            ],
            **_system(s),
        }
    else:
        out = {"instruction": s.prompt, "input": "", "output": s.answer, **_system(s)}
    return {**out, "provenance": s.provenance}


def _assistant(text: str | None) -> dict:
    return {"role": "assistant", "content": text}


def _system(s: Sample) -> dict:
    system = next((m["content"] for m in s.messages if m["role"] == "system"), None)
    return {"system": system} if system else {}


def check_target(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise ConfigError(
            f"output.path: {path} exists; set output.overwrite=true to replace it, or choose another path"
        )


def write(samples: list[Sample], cfg, stats: dict) -> dict[str, Path]:
    """The data file, its card and statistics, and the registry entry; returns their paths."""
    out = Path(cfg.output.path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fmt = "openai" if any(s.tools for s in samples) else cfg.output.format  # `row` writes tool calls so
    atomic_write(out, "".join(json.dumps(row(s, fmt), ensure_ascii=False) + "\n" for s in samples))
    name = cfg.output.name or out.stem
    stats = {**stats, "format": fmt, "name": name}
    written = {"data": out}
    written["stats"] = out.with_name(f"{out.stem}.stats.json")
    atomic_write(written["stats"], json.dumps(stats, indent=1, ensure_ascii=False))
    written["card"] = out.with_name(f"{out.stem}.card.md")
    atomic_write(written["card"], card(samples, cfg, stats))
    if cfg.output.registry:
        written["registry"] = add_to_registry(
            Path(cfg.output.registry), name, out, fmt, preference=any(s.chosen is not None for s in samples)
        )
    return written


def add_to_registry(registry: Path, name: str, data: Path, fmt: str, preference: bool) -> Path:
    """``name`` in a dataset_info.json (made if missing; other entries kept), pointing at ``data``."""
    entries = {}
    if registry.is_file():
        try:
            entries = json.loads(registry.read_text(encoding="utf-8"))
        except ValueError:
            raise ConfigError(
                f"output.registry: {registry} is not valid JSON; fix it or name another file"
            ) from None
        if not isinstance(entries, dict):
            raise ConfigError(f"output.registry: {registry} does not hold a mapping of dataset names")
    try:
        file_name = str(data.resolve().relative_to(registry.resolve().parent))
    except ValueError:
        file_name = str(data.resolve())
    entry = {"file_name": file_name, "formatting": fmt}
    if preference:
        entry["ranking"] = True
    entries[name] = entry
    registry.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(registry, json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
    return registry


def card(samples: list[Sample], cfg, stats: dict) -> str:
    from tuneforge.data.inspect import histogram

    lines = [
        f"# {stats['name']}",
        "",
        f"Generated by `tuneforge data generate` with the `{cfg.recipe.name}` recipe; teacher "
        f"`{cfg.teacher.model}`"
        + (f" at {cfg.teacher.base_url}" if cfg.teacher.base_url else " (in-process)")
        + ".",
        "",
        f"- samples kept: {stats['kept']} of {stats['generated']} generated",
        f"- format: {stats['format']} ({cfg.output.path})",
        f"- teacher calls: {stats['teacher']['calls']} ({stats['teacher']['cached']} from the cache, "
        f"{stats['teacher']['failed']} failed), tokens {stats['teacher']['prompt_tokens']} in / "
        f"{stats['teacher']['completion_tokens']} out",
        "",
        "## Dropped",
        "",
    ]
    dropped = stats["dropped"]
    lines += [f"- {n} {reason}" for reason, n in sorted(dropped.items(), key=lambda x: -x[1])] or ["- none"]
    if stats.get("judge_calibration"):
        c = stats["judge_calibration"]
        lines += ["", f"Judge calibration: agreement {c['agreement']:.0%} on {c['judged']} human-rated rows."]
    lengths = [len(s.answer) for s in samples]
    lines += ["", "## Answer lengths (characters)", "", "```", *histogram(lengths), "```"] if lengths else []
    topics = Counter(s.provenance.get("topic") for s in samples if s.provenance.get("topic"))
    if topics:
        lines += ["", "## Topics", ""] + [f"- {t}: {n}" for t, n in topics.most_common()]
    return "\n".join(lines) + "\n"
