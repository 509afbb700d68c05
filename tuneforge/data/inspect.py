"""`tuneforge data inspect CONFIG`: what the model will actually be trained on.

Shows a few rendered samples with the trained tokens marked (green in a terminal, ``[[...]]``
when piped) and the statistics of the prepared data: samples kept, tokens, the share trained, a
length histogram, the dropped samples by reason, with a few of them named by file and line
("data.jsonl line 12: no trained token within max_length (812 tokens; max_length 512)"), and how
many prompts data.prompt_truncation shortened.
Preference pairs show the prompt with the chosen and the rejected answer marked; KTO samples their
label.
"""

from __future__ import annotations

import sys

from tuneforge.config.schema import Config
from tuneforge.data.render import IGNORE_INDEX

GREEN, DIM, RESET = "\033[32m", "\033[2m", "\033[0m"


def mark_sample(tokenizer, input_ids: list[int], labels: list[int], color: bool) -> str:
    """Decode a sample, marking the spans whose tokens are trained."""
    return "".join(
        _fmt(text, trained, color) for text, trained in trained_spans(tokenizer, input_ids, labels)
    )


def trained_spans(tokenizer, input_ids: list[int], labels: list[int]) -> list[tuple[str, bool]]:
    """A sample decoded in runs of tokens that are all trained or all masked: (text, trained)."""
    out: list[tuple[str, bool]] = []
    span: list[int] = []
    trained = None
    for tok, lab in zip(input_ids, labels, strict=True):
        is_trained = lab != IGNORE_INDEX
        if trained is not None and is_trained != trained:
            out.append((tokenizer.decode(span), trained))
            span = []
        span.append(tok)
        trained = is_trained
    if span:
        out.append((tokenizer.decode(span), bool(trained)))
    return out


def _fmt(text: str, trained: bool, color: bool) -> str:
    if color:
        return f"{GREEN}{text}{RESET}" if trained else f"{DIM}{text}{RESET}"
    return f"[[{text}]]" if trained else text


def histogram(lengths: list[int], bins: int = 8, width: int = 40) -> list[str]:
    rows = histogram_bins(lengths, bins)
    top = max((c for _, _, c in rows), default=0)
    return [f"  {a:>6}-{b:<6} {'#' * round(width * c / top) if top else '':<{width}} {c}" for a, b, c in rows]


def histogram_bins(lengths: list[int], bins: int = 8) -> list[tuple[int, int, int]]:
    """Sample lengths counted in up to ``bins`` equal ranges: (first, last, count)."""
    if not lengths:
        return []
    lo, hi = min(lengths), max(lengths)
    step = max(1, -(-(hi - lo + 1) // bins))
    counts = [0] * bins
    for n in lengths:
        counts[min((n - lo) // step, bins - 1)] += 1
    rows = []
    for i, c in enumerate(counts):
        a, b = lo + i * step, min(lo + (i + 1) * step - 1, hi)
        if a > hi:
            break
        rows.append((a, b, c))
    return rows


def inspect_data(cfg: Config, num_samples: int = 3, color: bool | None = None) -> str:
    from tuneforge.data.kinds import get_kind
    from tuneforge.training.prepare import prepare

    color = sys.stdout.isatty() if color is None else color
    run = prepare(cfg, load_weights=False, write_folder=False, quiet=True)  # the run's own prologue
    stage, tokenizer, template, data = run.stage, run.tokenizer, run.template, run.data
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
        if s.dropped_examples:
            lines.append("dropped samples, for example:")
            lines += [f"  {example}" for example in s.dropped_examples]
    else:
        lines.append("dropped: 0")
    if s.prompts_shortened:
        lines.append(
            f"prompts shortened: {s.prompts_shortened} (data.prompt_truncation={cfg.data.prompt_truncation})"
        )
    return "\n".join(lines)
