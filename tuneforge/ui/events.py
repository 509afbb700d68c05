"""Server-Sent Events for the live pages: new metrics.jsonl records and new log text of a run or
a job, as they are written, polled from the files (the trainer is another process). A stream ends
with an ``end`` event once the run or job is no longer running, or when the browser goes away."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import StreamingResponse

POLL_S = 0.5


def event(kind: str, data) -> str:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"event: {kind}\n" + "".join(f"data: {line}\n" for line in text.split("\n")) + "\n"


class Tail:
    """New complete lines of a file since the last read (a partial last line waits)."""

    def __init__(self, path: Path | None, from_start: bool = True):
        self.path, self.offset = path, 0
        if path is not None and not from_start and path.is_file():
            self.offset = path.stat().st_size

    def lines(self) -> list[str]:
        if self.path is None or not self.path.is_file():
            return []
        size = self.path.stat().st_size
        if size < self.offset:  # rewritten (a resumed run trims its history): read it again
            self.offset = 0
        with self.path.open("rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if end < 0:
            return []
        self.offset += end + 1
        return [terminal_line(x) for x in chunk[: end + 1].decode("utf-8", "replace").split("\n")][:-1]


def terminal_line(text: str) -> str:
    """What a terminal shows of a line a progress bar rewrote with carriage returns."""
    return text.rstrip("\r").rsplit("\r", 1)[-1]


def stream(
    request: Request,
    metrics: Path | None,
    log: Path | None,
    running: Callable[[], bool],
    state: Callable[[], dict],
) -> StreamingResponse:
    async def events() -> AsyncIterator[str]:
        metric_tail, log_tail = Tail(metrics), Tail(log)
        last_state = None
        while True:
            alive = running()  # read before the files, so the last lines are sent before `end`
            for line in metric_tail.lines():
                try:
                    yield event("metric", json.loads(line))
                except ValueError:
                    continue
            lines = log_tail.lines()
            if lines:
                yield event("log", "\n".join(lines))
            now = state()
            if now != last_state:
                yield event("state", now)
                last_state = now
            if not alive:
                yield event("end", now)
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(POLL_S)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
