"""`tuneforge eval MODEL_OR_RUN --tasks ...`: resolve the tasks, load the model (a run: the trained
model and its base, both prompted with the run's saved chat template), run every task on each side,
let pairwise tasks compare the sides, and write eval.json, eval.md and the plots."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from pydantic import TypeAdapter, ValidationError

from tuneforge.errors import ConfigError
from tuneforge.eval.target import Target
from tuneforge.eval.tasks import TASKS

BUILTIN = {"mmlu": {"name": "choice", "layout": "mmlu", "label": "mmlu"}}
FOLDER_BUILTINS = ("ceval", "cmmlu")  # need their folder: ceval=PATH


def task_adapter() -> TypeAdapter:
    from tuneforge.config.schema import TaskConfigUnion

    return TypeAdapter(list[TaskConfigUnion])


def parse_tasks(raw: list[dict], source: str) -> list:
    """Validate task dicts into task configs; errors name the source, the task index and the key."""
    names = TASKS.names()
    for i, t in enumerate(raw):
        if not isinstance(t, dict) or "name" not in t:
            raise ConfigError(f"{source}: task {i} needs `name:` (one of {', '.join(names)})")
        TASKS.get(t["name"])  # did-you-mean on a wrong type
    try:
        tasks = task_adapter().validate_python(raw)
    except ValidationError as e:
        raise ConfigError(f"{source}: " + "; ".join(_describe(err, raw) for err in e.errors())) from None
    keys = [t.key for t in tasks]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise ConfigError(
            f"{source}: two tasks are called {sorted(dup)[0]!r}; give each a different `label:`"
        )
    return tasks


def _describe(err: dict, raw: list[dict]) -> str:
    loc = [p for p in err["loc"] if p not in TASKS]  # pydantic puts the union tag into the location
    where = f"task {loc[0]}" + (
        f" ({raw[loc[0]].get('label') or raw[loc[0]]['name']})" if loc and isinstance(loc[0], int) else ""
    )
    key = ".".join(str(p) for p in loc[1:])
    if err["type"] == "extra_forbidden" and isinstance(loc[0], int):
        valid = sorted(TASKS.get(raw[loc[0]]["name"]).Config.model_fields)
        return f"{where}: unknown key {key!r}; valid keys: {', '.join(valid)}"
    if err["type"] == "missing":
        return f"{where}: {key} is required"
    return f"{where}: {key}: {err['msg']}"


def resolve_tasks(specs: list[str], overrides: dict) -> list:
    """`--tasks` entries: built-in names (mmlu, ceval=DIR, cmmlu=DIR) or YAML files holding `tasks:`.
    `overrides` (subjects, num_fewshot, limit) apply to the built-in benchmarks."""
    raw: list[dict] = []
    for spec in specs:
        name, _, value = spec.partition("=")
        if name in BUILTIN and not value:
            raw.append({**BUILTIN[name], **overrides})
        elif name in FOLDER_BUILTINS:
            if not value:
                raise ConfigError(
                    f"--tasks {name} needs its data folder: --tasks {name}=PATH (with dev/ and test/)"
                )
            raw.append({"name": "choice", "layout": name, "label": name, "path": value, **overrides})
        elif Path(spec).suffix in (".yaml", ".yml"):
            if not Path(spec).is_file():
                raise ConfigError(f"--tasks {spec}: file not found")
            data = yaml.safe_load(Path(spec).read_text(encoding="utf-8")) or {}
            tasks = data.get("tasks") if isinstance(data, dict) else data
            if not isinstance(tasks, list):
                raise ConfigError(f"{spec}: expected `tasks:` with a list of task configs")
            raw.extend(tasks)
        else:
            from tuneforge.registry import did_you_mean

            choices = [*BUILTIN, *FOLDER_BUILTINS, "FILE.yaml"]
            raise ConfigError(
                f"--tasks {spec!r} is not a built-in task or a .yaml file: {did_you_mean(spec, choices)}"
            )
    return parse_tasks(raw, "--tasks")


def is_run(path: str) -> bool:
    return (Path(path) / "manifest.json").is_file() and (Path(path) / "config.yaml").is_file()


@contextmanager
def _adapter_off(model):
    with model.disable_adapter():
        yield


def sides(model_or_run: str, with_base: bool = True, trust_remote_code: bool = False) -> Iterator[Target]:
    """The models to evaluate, one at a time: a run's base ('before') then the trained model
    ('after'), both with the run's template; or a plain model ('model') with its own template.
    ``trust_remote_code`` is the command's flag (a run's config.yaml alone never enables it)."""
    if is_run(model_or_run):
        from peft import PeftModel

        from tuneforge.artifacts import load_run

        run = load_run(model_or_run, trust_remote_code=trust_remote_code)
        if isinstance(run.model, PeftModel):
            if with_base:
                with _adapter_off(run.model):
                    yield Target(run.model, run.tokenizer, run.chat_template, run.stop_tokens, "before")
            yield Target(run.model, run.tokenizer, run.chat_template, run.stop_tokens, "after")
            return
        if with_base:
            base = load_run(model_or_run, base_only=True, trust_remote_code=trust_remote_code)
            yield Target(base.model, run.tokenizer, run.chat_template, run.stop_tokens, "before")
            del base
            gc.collect()
        yield Target(run.model, run.tokenizer, run.chat_template, run.stop_tokens, "after")
        return
    from tuneforge.config.schema import ModelConfig
    from tuneforge.methods import METHODS
    from tuneforge.models.load import load_model, load_tokenizer

    mcfg = ModelConfig(name_or_path=model_or_run, trust_remote_code=trust_remote_code)
    tokenizer = load_tokenizer(mcfg)
    model = load_model(mcfg, METHODS.get("full").Config())
    model.eval()
    stops = (tokenizer.eos_token,) if tokenizer.eos_token else ()
    yield Target(model, tokenizer, getattr(tokenizer, "chat_template", None), stops, "model")


def evaluate(
    model_or_run: str, tasks: list, out_dir: Path, with_base: bool = True, trust_remote_code: bool = False
) -> dict:
    """Run `tasks` on every side, write the reports into `out_dir`, return the JSON summary."""
    from tuneforge.eval.report import write_reports

    results: dict[str, dict] = {t.key: {"config": t.model_dump(mode="json"), "sides": {}} for t in tasks}
    raw: dict[str, dict] = {t.key: {} for t in tasks}
    side_names = []
    for target in sides(model_or_run, with_base, trust_remote_code):
        side_names.append(target.side)
        for task in tasks:
            print(f"[{target.side}] {task.key} ({task.name})")
            res = TASKS.get(task.name).run(task, target)
            raw[task.key][target.side] = res
            results[task.key]["sides"][target.side] = {
                "metrics": res.metrics,
                "subjects": res.subjects,
                "counts": res.counts,
                "samples": res.samples,
            }
    for task in tasks:
        combine = TASKS.hook(task.name, "combine")
        if combine is not None and {"before", "after"} <= set(raw[task.key]):
            results[task.key]["combined"] = combine(task, raw[task.key])
    summary = {"model": str(model_or_run), "run": is_run(model_or_run), "sides": side_names, "tasks": results}
    write_reports(summary, out_dir)
    return summary
