"""RUN_DIR/metrics.jsonl: every record the trainer logs, one JSON line each, written as training
goes (step 7 of a run, a callback `tuneforge.training.build.build_trainer` adds).

A line is what the Trainer logged (loss, learning_rate, grad_norm, eval_* metrics, a stage's own
metrics such as DPO's rewards/margins or GRPO's reward) plus ``step``, ``max_steps``, ``epoch``,
``time`` (Unix seconds) and, from the second training record on, ``tokens_per_second`` since the previous one.
Each line is flushed as it is written, so a reader (a web page, `tail -f`) sees it at once and a
killed run leaves at most one partial last line, which `read_metrics` skips. A resumed run first
drops the lines after the step it resumes from, so the file tells one history, as
``trainer_state.json`` does. The final loss plot is drawn from it. Only the main process writes.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from transformers import TrainerCallback

FILE = "metrics.jsonl"


class MetricsLog(TrainerCallback):
    def __init__(self, path: Path):
        self.path = Path(path)
        self._last: tuple[float, float] | None = None  # (time, tokens seen) of the last training record

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        kept = [r for r in read_metrics(self.path.parent) if r.get("step", 0) <= state.global_step]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(_line(r) for r in kept), encoding="utf-8")
        tmp.replace(self.path)  # a resumed run continues the history it resumed from
        self._last = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        now = time.time()
        record = {"step": state.global_step, "epoch": state.epoch, "time": round(now, 3), **logs}
        record["max_steps"] = state.max_steps  # the run's length, for progress and time left
        seen = getattr(state, "num_input_tokens_seen", None)
        if "loss" in logs and seen:
            if self._last is not None and now > self._last[0]:
                record["tokens_per_second"] = round((seen - self._last[1]) / (now - self._last[0]), 2)
            self._last = (now, seen)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(_line(record))
            f.flush()


def _line(record: dict) -> str:
    return json.dumps({k: _plain(v) for k, v in record.items()}, ensure_ascii=False) + "\n"


def _plain(value):
    """JSON has no NaN or infinity: those are written as null (a NaN loss stops the run anyway)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else str(value)


def read_metrics(run_dir: Path) -> list[dict]:
    """The records of ``run_dir/metrics.jsonl`` in order ([] when there is none); a partial last line
    (a run killed while writing it) is skipped."""
    path = Path(run_dir) / FILE
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out
