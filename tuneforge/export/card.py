"""The model card (README.md) written next to an exported model: what it was trained from, on what,
how, and the numbers the run measured, all read from the run's manifest and resolved config."""

from __future__ import annotations

from pathlib import Path

# metrics worth a line on the card, in this order (others stay in the manifest)
_METRICS = ("train_loss", "eval_loss", "epoch", "global_step", "train_runtime")


def model_card(run, run_dir: str | Path) -> str:
    """Markdown for ``run`` (a `tuneforge.artifacts.LoadedRun`)."""
    m, cfg = run.manifest, run.config
    base = (m.get("base_model") or {}).get("name_or_path") or cfg.model.name_or_path
    method = cfg.method.model_dump(exclude_defaults=True)
    data = m.get("data") or {}
    sources = [d.path or d.name for d in cfg.data.datasets]
    lines = [
        "---",
        "library_name: transformers",
        "tags: [tuneforge]",
        "---",
        f"# {Path(run_dir).resolve().name}",
        "",
        f"Fine-tuned with tuneforge from `{base}`.",
        "",
        "| | |",
        "|---|---|",
        f"| base model | `{base}` |",
        f"| stage | {m.get('stage', '?')} |",
        f"| method | {m.get('method', '?')} ({', '.join(f'{k}={v}' for k, v in method.items() if k != 'name')}) |",
        f"| data | {', '.join(f'`{s}`' for s in sources)} |",
        f"| samples / tokens | {data.get('samples', '?')} / {data.get('tokens', '?')} |",
        f"| data fingerprint | `{data.get('fingerprint', '?')}` |",
        f"| chat template | {m.get('template', '?')}; turns end with {', '.join(f'`{t}`' for t in run.stop_tokens)} |",
        f"| trained | {m.get('created', '?')} with transformers {m.get('versions', {}).get('transformers', '?')} |",
        "",
    ]
    metrics = m.get("metrics") or {}
    shown = [(k, metrics[k]) for k in _METRICS if k in metrics]
    if shown:
        lines += ["## Measured", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in shown]
        lines.append("")
    compare = m.get("compare") or {}
    if "after_accuracy" in compare:
        lines += [
            f"Held-out prompts ({cfg.compare.prompts}): accuracy {compare['before_accuracy']:.1%} before "
            f"training, {compare['after_accuracy']:.1%} after.",
            "",
        ]
    lines += [
        "## Use",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        'model = AutoModelForCausalLM.from_pretrained("PATH")',
        'tokenizer = AutoTokenizer.from_pretrained("PATH")  # carries the chat template used in training',
        "```",
        "",
        "`generation_config.json` stops generation at the end-of-turn token.",
        "",
    ]
    return "\n".join(lines)
