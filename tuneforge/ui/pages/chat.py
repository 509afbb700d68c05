"""The Chat page: chat with a run (the answer streams in as it is generated), or with two runs side
by side on the same prompt. Runs load in this process with the template they trained with
(`tuneforge.inference.load`), at most ``KEEP`` at a time, each answering one prompt at a time."""

from __future__ import annotations

import io
import json
import queue
import threading
from collections import OrderedDict
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from tuneforge.errors import TuneforgeError
from tuneforge.ui.events import event
from tuneforge.ui.paths import PathRefused, run_folder
from tuneforge.ui.posted import posted

KEEP = 2
MOST_NEW_TOKENS = 1024
_LOADED: OrderedDict[tuple[str, float], tuple[object, threading.Lock]] = OrderedDict()
_LOADING = threading.Lock()


def routes(ui) -> list[Route]:
    async def page(request: Request):
        chosen = [r for r in request.query_params.getlist("run") if r][:4]
        finished = ui.finished_runs()
        return ui.render(request, "chat.html", chosen=chosen, finished=finished)

    async def answer(request: Request):
        values = await posted(request)
        try:
            run_dir = run_folder(ui.project, ui.runs, values.get("run", ""))
            messages = json.loads(values.get("messages") or "[]")
            max_new = max(1, min(MOST_NEW_TOKENS, int(values.get("max_new_tokens") or 128)))
        except (PathRefused, ValueError) as e:
            return StreamingResponse(_once("error", str(e)), media_type="text/event-stream")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            return StreamingResponse(
                _once("error", "messages: a JSON list of {role, content}"), media_type="text/event-stream"
            )
        if values.get("system"):
            messages = [{"role": "system", "content": values["system"]}, *messages]
        return StreamingResponse(_stream(run_dir, messages, max_new), media_type="text/event-stream")

    return [Route("/chat", page), Route("/chat/stream", answer, methods=["POST"])]


async def _once(kind: str, text: str):
    yield event(kind, json.dumps(text))


async def _stream(run_dir: Path, messages: list[dict], max_new_tokens: int):
    pieces: queue.Queue = queue.Queue()

    class Out:
        def write(self, text: str) -> None:
            pieces.put(("piece", text))

        def flush(self) -> None:
            pass

    def work() -> None:
        from tuneforge.inference.chat import stream_answer

        try:
            model, lock = loaded(run_dir)
            with lock:
                stream_answer(model, messages, max_new_tokens, out=Out())
        except TuneforgeError as e:
            pieces.put(("error", str(e)))
        except Exception as e:  # noqa: BLE001 - shown on the page; the server keeps serving
            pieces.put(("error", f"{type(e).__name__}: {e}"))
        finally:
            pieces.put(None)

    threading.Thread(target=work, daemon=True).start()
    while (item := await run_in_threadpool(pieces.get)) is not None:
        yield event(item[0], json.dumps(item[1]))
    yield event("done", "{}")


def loaded(run_dir: Path):
    """The run's chat model and its lock, loaded once (again when the run was trained anew)."""
    from tuneforge.inference.load import load_chat_model

    manifest = run_dir / "manifest.json"
    key = (str(run_dir), manifest.stat().st_mtime if manifest.is_file() else 0.0)
    with _LOADING:
        if key not in _LOADED:
            for old in [k for k in _LOADED if k[0] == key[0]]:
                del _LOADED[old]
            while len(_LOADED) >= KEEP:
                _LOADED.popitem(last=False)
            _LOADED[key] = (load_chat_model(str(run_dir), out=io.StringIO()), threading.Lock())
        _LOADED.move_to_end(key)
        return _LOADED[key]
