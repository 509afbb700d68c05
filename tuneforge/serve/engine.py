"""The request queue of `tuneforge serve`: admission control in front of the backend.

The HTTP handlers (`tuneforge.serve.app`) run on the asyncio event loop and never call model code;
they ``submit`` a `Generation` here and read its text pieces back asynchronously. Worker threads
(``--max-concurrency``, default 1: adapters switch per request on one shared model, so one
generation runs at a time) take jobs from a queue of at most ``--max-queue`` waiting requests.
When that is full a request is refused at once with 429 and a Retry-After estimate, rather than
piling up; after shutdown has begun, with 503.
"""

from __future__ import annotations

import asyncio
import logging
import math
import queue
import threading
import time
from dataclasses import dataclass, field

from tuneforge.serve.backends import Generation, Outcome
from tuneforge.serve.protocol import APIError

log = logging.getLogger(__name__)


@dataclass
class Job:
    generation: Generation
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancel: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None

    def _push(self, kind: str, value) -> None:
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))
        except RuntimeError:  # the event loop is gone (server shutting down)
            self.cancel.set()

    async def pieces(self):
        """Yield the generated text pieces; afterwards ``self.outcome`` holds the `Outcome`."""
        while True:
            kind, value = await self.events.get()
            if kind == "text":
                yield value
            elif kind == "done":
                self.outcome = value
                return
            else:
                raise APIError(500, f"generation failed: {value}", type="server_error")


class Engine:
    def __init__(self, backend, *, max_concurrency: int = 1, max_queue: int = 8):
        self.backend = backend
        self.max_concurrency, self.max_queue = max_concurrency, max_queue
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._admitted = 0  # queued + running
        self._closing = False
        self._seconds = 5.0  # running mean of one generation's wall time, for Retry-After
        self._threads = [
            threading.Thread(target=self._work, name=f"tuneforge-gen-{i}", daemon=True)
            for i in range(max_concurrency)
        ]
        for t in self._threads:
            t.start()

    def submit(self, generation: Generation) -> Job:
        with self._lock:
            if self._closing:
                raise APIError(
                    503, "the server is shutting down", type="server_error", headers={"Retry-After": "10"}
                )
            if self._admitted >= self.max_concurrency + self.max_queue:
                wait = math.ceil(self._seconds * (self._admitted / self.max_concurrency))
                raise APIError(
                    429,
                    f"server busy: {self._admitted} requests running or queued (limit "
                    f"{self.max_concurrency} running + {self.max_queue} queued); retry later",
                    type="rate_limit_error",
                    code="server_busy",
                    headers={"Retry-After": str(max(1, wait))},
                )
            self._admitted += 1
        job = Job(generation, asyncio.get_running_loop())
        self._jobs.put(job)
        return job

    def busy(self) -> int:
        return self._admitted

    def close(self) -> None:
        with self._lock:
            self._closing = True
        for _ in self._threads:
            self._jobs.put(None)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            event: tuple[str, object]
            try:
                if job.cancel.is_set():
                    event = ("done", Outcome("cancelled", 0))
                else:
                    start = time.monotonic()
                    outcome = self.backend.generate(
                        job.generation, lambda text, j=job: j._push("text", text), job.cancel.is_set
                    )
                    self._seconds = 0.8 * self._seconds + 0.2 * (time.monotonic() - start)
                    event = ("done", outcome)
            except Exception as e:  # report to the client as a 500 and keep serving
                log.exception("generation failed")
                event = ("error", f"{type(e).__name__}: {e}")
            with self._lock:  # free the slot before the client hears back, so its next call fits
                self._admitted -= 1
            job._push(*event)
