"""`tuneforge data inspect CONFIG`: what the model will actually be trained on.

Shows a few rendered samples with the trained tokens marked (green in a terminal, ``[[...]]``
when piped) and the statistics of the prepared data: samples kept, tokens, the share trained, a
length histogram and the dropped samples by reason. Preference pairs show the prompt with the
chosen and the rejected answer marked; KTO samples their label.
"""

from __future__ import annotations

import sys

from tuneforge.config.schema import Config
from tuneforge.data.render import IGNORE_INDEX

GREEN, DIM, RESET = "\033[32m", "\033[2m", "\033[0m"


def mark_sample(tokenizer, input_ids: list[int], labels: list[int], color: bool) -> str:
    """Decode a sample, marking the spans whose tokens are trained."""
    out: list[str] = []
    span: list[int] = []
    trained = None
    for tok, lab in zip(input_ids, labels, strict=True):
        is_trained = lab != IGNORE_INDEX
        if trained is not None and is_trained != trained:
            out.append(_fmt(tokenizer.decode(span), trained, color))
            span = []
        span.append(tok)
        trained = is_trained
    if span:
        out.append(_fmt(tokenizer.decode(span), bool(trained), color))
    return "".join(out)


def _fmt(text: str, trained: bool, color: bool) -> str:
    if color:
        return f"{GREEN}{text}{RESET}" if trained else f"{DIM}{text}{RESET}"
    return f"[[{text}]]" if trained else text


def histogram(lengths: list[int], bins: int = 8, width: int = 40) -> list[str]:
    if not lengths:
        return []
    lo, hi = min(lengths), max(lengths)
    step = max(1, -(-(hi - lo + 1) // bins))
    counts = [0] * bins
    for n in lengths:
        counts[min((n - lo) // step, bins - 1)] += 1
    top = max(counts)
    rows = []
    for i, c in enumerate(counts):
        a, b = lo + i * step, min(lo + (i + 1) * step - 1, hi)
        if a > hi:
            break
        rows.append(f"  {a:>6}-{b:<6} {'#' * round(width * c / top) if top else '':<{width}} {c}")
    return rows


def inspect_data(cfg: Config, num_samples: int = 3, color: bool | None = None) -> str:
    from tuneforge.data.kinds import get_kind
    from tuneforge.data.pipeline import prepare_data
    from tuneforge.data.templates import resolve_template
    from tuneforge.models.load import load_tokenizer
    from tuneforge.stages import STAGES

    color = sys.stdout.isatty() if color is None else color
    stage = STAGES.get(cfg.stage.name)
    tokenizer = load_tokenizer(cfg.model)
    template = resolve_template(cfg.data.template, tokenizer) if stage.SAMPLE_KIND != "document" else None
    data = getattr(stage, "prepare_data", prepare_data)(cfg, tokenizer, template, stage.SAMPLE_KIND)
    s = data.stats
    legend = f"{GREEN}trained{RESET} / {DIM}masked{RESET}" if color else "[[trained]] / masked"
    lines = [f"template: {template.name if template else '(none: plain text)'}   marks: {legend}", ""]
    kind = get_kind(stage.SAMPLE_KIND)
    for i in range(min(num_samples, len(data.train))):
        row = data.train[i]
        if kind is not None:  # preference pairs / KTO samples: the kind shows its own columns
            lines += [f"--- sample {i} ---", kind.show(tokenizer, row, color), ""]
            continue
        if "labels" not in row:  # a prompt of a generating stage (grpo): where generation starts
            head = f"--- prompt {i} ({len(row['prompt_ids'])} tokens, reference answer {row['answer']!r}) ---"
            lines += [head, row["prompt"], ""]
            continue
        n_trained = sum(1 for x in row["labels"] if x != IGNORE_INDEX)
        lines += [
            f"--- sample {i} ({len(row['input_ids'])} tokens, {n_trained} trained) ---",
            mark_sample(tokenizer, row["input_ids"], row["labels"], color),
            "",
        ]
    lines += [
        "--- statistics ---",
        f"sources: {', '.join(s.sources)}",
        f"samples kept: {s.samples}" + (f" (+{s.eval_samples} held out for eval)" if s.eval_samples else ""),
        f"tokens: {s.tokens} (mean {s.tokens / max(s.samples, 1):.1f}, max {max(s.lengths, default=0)}, "
        f"max_length {cfg.data.max_length})",
        f"trained tokens: {s.trained_tokens} ({s.trained_share:.1%})"
        if not s.prompts_only
        else "trained tokens: none (prompts only; completions are generated in training)",
        "length histogram (tokens):",
        *histogram(s.lengths),
    ]
    if s.dropped:
        lines.append(f"dropped: {sum(s.dropped.values())}")
        lines += [f"  {n:>6}  {reason}" for reason, n in sorted(s.dropped.items(), key=lambda x: -x[1])]
    else:
        lines.append("dropped: 0")
    return "\n".join(lines)
