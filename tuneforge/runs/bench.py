"""`tuneforge bench methods`: every registered tuning method (or a subset) trained on the same
model, data and step budget by the shared candidate runner (`tuneforge.runs.candidates`), reported as
one table + bar charts + JSON (bench.md, bench.png, bench.json in the bench folder).

Methods need their own settings (a learning rate that suits full fine-tuning is far too low for
LoRA). Each candidate's config is the base config with its method replaced, then these partial
configs merged over it, later winning:
1. `DEFAULT_SETTINGS` below (learning rates for the methods that train every weight);
2. the settings file (``--settings FILE``): a mapping candidate name -> partial config, e.g.
   ``lora: {method: {r: 16}, train: {learning_rate: 1.0e-3}}``. A candidate name that is not a
   method (``qlora-8bit``) names its method in ``method: {name: qlora, bits: 8}``.
Anything the base config's `method:` section holds is dropped: each method starts from its own
defaults.
"""

from __future__ import annotations

import json
from pathlib import Path

from tuneforge.config.raw import read_yaml
from tuneforge.errors import ConfigError
from tuneforge.runs.candidates import Candidate, run_candidates
from tuneforge.runs.leaderboard import Column, markdown, number, percent, plot_bars, write_json, yes_no

# Full-weight methods move every weight; their usual learning rates are ~10x below adapters'.
_FULL_LR = {"train": {"learning_rate": 5.0e-5}}
DEFAULT_SETTINGS: dict[str, dict] = {
    "full": _FULL_LR,
    "freeze": _FULL_LR,
    "galore": _FULL_LR,
    "apollo": _FULL_LR,
    "badam": {"train": {"learning_rate": 1.0e-4}},
}

COLUMNS = [
    Column("method", "name"),
    Column("trainable", "trainable_share", percent),
    Column("peak RSS MB", "peak_rss_mb", number(0)),
    Column("tokens/s", "tokens_per_s", number(0)),
    Column("train loss", "train_loss", number(4)),
    Column("eval loss", "eval_loss", number(4)),
    Column("accuracy before", "accuracy_before", percent),
    Column("accuracy after", "accuracy", percent),
    Column("saved MB", "size_mb", number(1)),
    Column("merges", "merges", yes_no),
    Column("wall s", "wall_s", number(0)),
    Column("status", "status"),
]


def read_settings(path: Path | None) -> dict[str, dict]:
    if path is None:
        return {}
    data = read_yaml(path)
    for name, partial in data.items():
        if not isinstance(partial, dict) or not set(partial) <= {
            "method",
            "train",
            "data",
            "model",
            "compare",
        }:
            raise ConfigError(
                f"{path}: {name}: expected a partial config with method:, train:, data:, model: or compare: "
                "sections (e.g. lora: {method: {r: 16}, train: {learning_rate: 1.0e-3}})"
            )
    return data


def bench_candidates(
    config: Path, names: list[str], settings: dict[str, dict], steps: int | None, fixed: list[str] = ()
) -> list[Candidate]:
    """One candidate per name, as dotted overrides of the base config."""
    from tuneforge.methods import METHODS

    candidates = []
    for name in names:
        merged = _merge(DEFAULT_SETTINGS.get(name, {}), settings.get(name, {}))
        method = dict(merged.pop("method", {}))
        method.setdefault("name", name)
        METHODS.get(method["name"])  # an unknown name fails here with a did-you-mean
        overrides = [f"method={json.dumps(method)}"]
        for section, values in merged.items():
            overrides += [f"{section}.{k}={json.dumps(v)}" for k, v in values.items()]
        if steps:
            overrides.append(f"train.max_steps={steps}")
        candidates.append(Candidate(name, config, [*overrides, *fixed]))
    return candidates


def bench_methods(
    config: Path,
    out: Path,
    methods: list[str] | None = None,
    steps: int | None = None,
    settings_path: Path | None = None,
    fixed: list[str] = (),
    echo=print,
) -> dict:
    """Run the bench and write bench.md/.json/.png into ``out``; return {rows, files}."""
    from tuneforge.methods import METHODS

    settings = read_settings(settings_path)
    names = list(dict.fromkeys(methods or METHODS.names()))
    candidates = bench_candidates(config, names, settings, steps, list(fixed))
    echo(f"bench: {len(candidates)} methods ({', '.join(names)}) into {out}")
    rows = run_candidates(candidates, out, echo=echo)
    table = markdown(rows, COLUMNS)
    budget = f"{steps} steps" if steps else "the config's budget"
    files = {
        "md": out / "bench.md",
        "json": write_json(rows, out / "bench.json", config=str(config), steps=steps),
        "png": plot_bars(
            rows, COLUMNS[1:-3] + [COLUMNS[-2]], out / "bench.png", f"methods on {config.name}, {budget}"
        ),
    }
    files["md"].write_text(
        f"# Methods on {config} ({budget})\n\n{table}\n\n"
        "peak RSS: the training process's own peak resident memory (model load, data, training, "
        "before/after answers). tokens/s: non-padding input tokens per second of training.\n",
        encoding="utf-8",
    )
    echo("\n" + table)
    echo(f"\nbench: {files['md']} {files['png']} {files['json']}")
    return {"rows": rows, "files": files}


def _merge(base: dict, over: dict) -> dict:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out
