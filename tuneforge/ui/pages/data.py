"""The Data page: choose data files from the project or entries of the dataset registry, and see
what `tuneforge data inspect` shows, in the browser: rendered samples with the trained tokens
highlighted, the statistics, the length histogram and the dropped samples with their reasons. It
runs the run's own prologue (`tuneforge.training.prepare`, tokenizer and data only), in this
process, so what it shows is what training would get."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from tuneforge.errors import TuneforgeError
from tuneforge.ui import form as schema_form
from tuneforge.ui import form_errors
from tuneforge.ui.paths import data_files
from tuneforge.ui.posted import posted

SAMPLES = 3


def routes(ui) -> list[Route]:
    async def page(request: Request):
        return ui.render(
            request, "data.html", files=data_files(ui.project), registries=_registries(ui), view=None
        )

    async def inspect(request: Request):
        values = await posted(request)
        samples = values.pop("samples", "") or str(SAMPLES)  # the page's own field, not a config key
        raw = schema_form.raw_from_form(values)
        cfg, errors, general = form_errors.errors_by_field(raw)
        view, problem = None, None
        if cfg is None:
            problem = "; ".join(general + list(errors.values()))
        elif not samples.isdigit():
            problem = f"samples shown: {samples!r} is not a whole number"
        else:
            try:
                view = await run_in_threadpool(inspection, cfg, max(1, min(50, int(samples))))
            except TuneforgeError as e:
                problem = str(e)
            except ValueError as e:
                problem = f"the data could not be prepared: {e}"
        return ui.render(
            request,
            "data.html",
            status_code=200 if view else 422,
            files=data_files(ui.project),
            registries=_registries(ui),
            view=view,
            problem=problem,
            values={**values, "samples": samples},
        )

    return [Route("/data", page), Route("/data/inspect", inspect, methods=["POST"])]


def inspection(cfg, num_samples: int = SAMPLES) -> dict:
    """What `tuneforge data inspect` prints, as data for the page."""
    from tuneforge.data.inspect import histogram_bins, trained_spans
    from tuneforge.data.kinds import get_kind
    from tuneforge.data.render import IGNORE_INDEX
    from tuneforge.training.prepare import prepare

    run = prepare(cfg, load_weights=False, write_folder=False, quiet=True)
    tokenizer, data, s = run.tokenizer, run.data, run.data.stats
    kind = get_kind(run.stage.SAMPLE_KIND)
    samples = []
    for i in range(min(num_samples, len(data.train))):
        row = data.train[i]
        if kind is not None:  # preference pairs / KTO samples: the kind's own text
            samples.append({"title": f"sample {i}", "text": kind.show(tokenizer, row, False)})
        elif "labels" not in row:  # a prompt of a generating stage
            samples.append({"title": f"prompt {i} ({len(row['prompt_ids'])} tokens)", "text": row["prompt"]})
        else:
            trained = sum(1 for x in row["labels"] if x != IGNORE_INDEX)
            samples.append(
                {
                    "title": f"sample {i} ({len(row['input_ids'])} tokens, {trained} trained)",
                    "spans": trained_spans(tokenizer, row["input_ids"], row["labels"]),
                }
            )
    bins = histogram_bins(s.lengths, bins=12)
    top = max((c for _, _, c in bins), default=0)
    return {
        "template": run.template.name if run.template else "(none: plain text)",
        "samples": samples,
        "sources": s.sources,
        "kept": s.samples,
        "eval_samples": s.eval_samples,
        "tokens": s.tokens,
        "max_length": cfg.data.max_length,
        "longest": max(s.lengths, default=0),
        "trained": s.trained_summary,
        "histogram": [(a, b, c, round(100 * c / top) if top else 0) for a, b, c in bins],
        "dropped": sorted(s.dropped.items(), key=lambda x: -x[1]),
        "dropped_total": sum(s.dropped.values()),
        "dropped_examples": s.dropped_examples,
        "prompts_shortened": s.prompts_shortened,
    }


def _registries(ui) -> list[tuple[str, list[str]]]:
    """The project's dataset registry files (dataset_info.json / .yaml) and their entry names."""
    from tuneforge.data.dataset_registry import DatasetRegistry

    found = []
    for path in data_files(ui.project):
        if path.rsplit("/", 1)[-1].split(".")[0] == "dataset_info":
            try:
                found.append((path, DatasetRegistry.from_file(ui.project / path).names()))
            except TuneforgeError:
                continue
    return found
