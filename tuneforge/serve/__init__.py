"""`tuneforge serve MODEL_OR_RUN`: an OpenAI-compatible HTTP server for trained runs and models.

The flow: `catalog` resolves the command line into served ids (run, adapters, base) -> `backends`
loads the weights once (transformers, or vLLM on a GPU) -> `engine` queues requests onto a worker
thread with bounded admission -> `app` speaks OpenAI's wire format (`protocol`) over HTTP.
`start_server` runs it in a background thread (tests, notebooks); `serve` blocks (the CLI).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from dataclasses import dataclass

from tuneforge.serve.app import Limits, create_app
from tuneforge.serve.catalog import Catalog, build_catalog
from tuneforge.serve.engine import Engine

log = logging.getLogger(__name__)

__all__ = ["Limits", "RunningServer", "build_catalog", "build_server", "serve", "start_server"]


def build_server(
    catalog: Catalog,
    *,
    backend: str = "auto",
    limits: Limits | None = None,
    max_concurrency: int = 1,
    max_queue: int = 8,
    backend_instance=None,
):
    """The Starlette app and its engine, with the model loaded."""
    from tuneforge.serve.choose import create_backend

    engine = Engine(
        backend_instance or create_backend(backend, catalog),
        max_concurrency=max_concurrency,
        max_queue=max_queue,
    )
    return create_app(catalog, engine, limits or Limits()), engine


def _uvicorn_config(app, host: str, port: int, log_level: str):
    import uvicorn

    # no limit_concurrency: past it uvicorn sends bare 503s, ahead of the engine's JSON 429 + Retry-After
    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, limit_concurrency=None, lifespan="on"
    )


@dataclass
class RunningServer:
    url: str
    server: object
    thread: threading.Thread
    engine: Engine

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.engine.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def start_server(app, engine: Engine, *, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Run ``app`` with uvicorn in a background thread; returns once it accepts connections."""
    import time

    import uvicorn

    port = port or free_port(host)
    server = uvicorn.Server(_uvicorn_config(app, host, port, "warning"))
    thread = threading.Thread(target=server.run, name="tuneforge-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start on {host}:{port}")
        time.sleep(0.02)
    return RunningServer(f"http://{host}:{port}", server, thread, engine)


def serve(
    catalog: Catalog,
    *,
    host: str,
    port: int,
    backend: str,
    limits: Limits,
    max_concurrency: int,
    max_queue: int,
) -> None:
    """Load the model and serve until interrupted (the CLI's entry point)."""
    import uvicorn

    if not _is_loopback(host) and not limits.api_key:
        log.warning(
            "serving on %s without an API key: anyone who can reach this address can use the model "
            "(set --api-key or TUNEFORGE_API_KEY)",
            host,
        )
    app, engine = build_server(
        catalog, backend=backend, limits=limits, max_concurrency=max_concurrency, max_queue=max_queue
    )
    ids = ", ".join(catalog.models)
    log.info("serving %s at http://%s:%d/v1 (backend %s)", ids, host, port, engine.backend.name)
    uvicorn.Server(_uvicorn_config(app, host, port, "info")).run()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
