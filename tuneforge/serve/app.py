"""The HTTP layer of `tuneforge serve`: OpenAI-compatible routes on Starlette, served by uvicorn.

    GET  /v1/models              the ids a request's `model` may name (run, adapters, base)
    POST /v1/chat/completions    chat with the id's own chat template; SSE when stream=true
    POST /v1/completions         raw text continuation
    GET  /health                 liveness and queue depth (no API key needed)

Handlers check the API key, the body size and the request, render the prompt exactly as training
rendered it (`tuneforge.data.render.render_prompt`), and hand a `Generation` to the engine's queue.
Every failure is an OpenAI-shaped JSON error with one line of text; stack traces stay in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import logging
import time
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from tuneforge.serve.backends import Generation
from tuneforge.serve.catalog import Catalog, ServedModel
from tuneforge.serve.engine import Engine, Job
from tuneforge.serve.protocol import (
    APIError,
    ChatRequest,
    CompletionRequest,
    new_id,
    parse,
    parse_tool_calls,
)

log = logging.getLogger(__name__)


@dataclass
class Limits:
    max_tokens: int = 1024  # the most a request may ask for (and the default when it asks nothing)
    max_request_bytes: int = 1_000_000
    api_key: str | None = None


def _endpoint(handler):
    @functools.wraps(handler)
    async def wrapped(request: Request):
        try:
            return await handler(request)
        except APIError as e:
            return JSONResponse(e.body(), status_code=e.status, headers=e.headers)
        except Exception as e:  # never a stack trace to the client; the log has it
            log.exception("request failed")
            err = APIError(
                500, f"internal error ({type(e).__name__}); see the server log", type="server_error"
            )
            return JSONResponse(err.body(), status_code=500)

    return wrapped


def create_app(catalog: Catalog, engine: Engine, limits: Limits) -> Starlette:
    backend = engine.backend
    tokenizer = backend.tokenizer
    created = int(time.time())

    def authorize(request: Request) -> None:
        if limits.api_key is None:
            return
        scheme, _, given = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer":  # auth schemes are case-insensitive (RFC 7235)
            given = ""
        if not hmac.compare_digest(given.strip().encode(), limits.api_key.encode()):
            raise APIError(
                401,
                "missing or wrong API key: send the header 'Authorization: Bearer <key>'",
                code="invalid_api_key",
            )

    async def body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_request_bytes:
            raise _too_large(limits)
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limits.max_request_bytes:
                raise _too_large(limits)
        return raw

    def served(model_id: str) -> ServedModel:
        found = catalog.get(model_id)
        if found is None:
            raise APIError(
                404,
                f"model {model_id!r} is not served here; choose one of {', '.join(catalog.models)}",
                param="model",
                code="model_not_found",
            )
        return found

    def budget(prompt_len: int, asked: int | None) -> int:
        if asked is not None and asked > limits.max_tokens:
            raise APIError(
                400,
                f"max_tokens={asked} is over this server's limit of {limits.max_tokens}",
                param="max_tokens",
            )
        room = (backend.context_length or 1 << 30) - prompt_len
        if room <= 0 or (asked is not None and asked > room):
            raise APIError(
                400,
                f"the prompt has {prompt_len} tokens"
                + (f" and max_tokens is {asked}" if asked else "")
                + f": over the model's context of {backend.context_length}; shorten the messages"
                + (" or lower max_tokens" if asked else ""),
                param="messages",
                code="context_length_exceeded",
            )
        return min(asked or limits.max_tokens, room)

    async def models(request: Request):
        authorize(request)
        data = [
            {"id": m.id, "object": "model", "created": created, "owned_by": m.owned_by}
            for m in catalog.models.values()
        ]
        return JSONResponse({"object": "list", "data": data})

    async def health(request: Request):
        return JSONResponse({"status": "ok", "backend": backend.name, "in_flight": engine.busy()})

    async def chat(request: Request):
        authorize(request)
        req = parse(ChatRequest, await body(request))
        req.check_supported()
        model = served(req.model)
        tools = req.tools if req.tools and req.tool_choice != "none" else None
        ids = _chat_prompt(model, req.messages, tools, tokenizer)
        job = engine.submit(_generation(req, model, ids, budget(len(ids), req.token_limit()), tokenizer))
        meta = {"id": new_id("chatcmpl"), "created": int(time.time()), "model": model.id}
        if req.stream:
            include_usage = bool((req.stream_options or {}).get("include_usage"))
            return _sse(_chat_chunks(job, meta, len(ids), tools is not None, include_usage), job)
        text = await _collect(job, request)
        content, calls = parse_tool_calls(text) if tools else (text, [])
        message = {"role": "assistant", "content": content if (content or not calls) else None}
        if calls:
            message["tool_calls"] = calls
        choice = {"index": 0, "message": message, "finish_reason": _finish(job, calls), "logprobs": None}
        return JSONResponse(
            {"object": "chat.completion", **meta, "choices": [choice], "usage": _usage(job, len(ids))}
        )

    async def completions(request: Request):
        authorize(request)
        req = parse(CompletionRequest, await body(request))
        req.check_supported()
        model = served(req.model)
        ids = list(tokenizer(req.text())["input_ids"])
        if not ids:
            raise APIError(400, "prompt: empty", param="prompt")
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        gen = _generation(req, model, ids, budget(len(ids), req.max_tokens), tokenizer, stop_ids=eos)
        job = engine.submit(gen)
        meta = {"id": new_id("cmpl"), "created": int(time.time()), "model": model.id}
        if req.stream:
            return _sse(_completion_chunks(job, meta), job)
        text = await _collect(job, request)
        choice = {"index": 0, "text": text, "finish_reason": _finish(job, []), "logprobs": None}
        return JSONResponse(
            {"object": "text_completion", **meta, "choices": [choice], "usage": _usage(job, len(ids))}
        )

    routes = [
        Route("/v1/models", _endpoint(models), methods=["GET"]),
        Route("/v1/chat/completions", _endpoint(chat), methods=["POST"]),
        Route("/v1/completions", _endpoint(completions), methods=["POST"]),
        Route("/health", _endpoint(health), methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        engine.close()  # queued requests are refused with 503 from here on

    return Starlette(routes=routes, lifespan=lifespan)


def _too_large(limits: Limits) -> APIError:
    return APIError(413, f"request body over this server's limit of {limits.max_request_bytes} bytes")


def _chat_prompt(model: ServedModel, messages: list[dict], tools: list[dict] | None, tokenizer) -> list[int]:
    from tuneforge.data.conversation import ROLES
    from tuneforge.data.formats import openai
    from tuneforge.data.render import render_prompt
    from tuneforge.data.templates import Template
    from tuneforge.errors import DataError, RowError

    if model.chat_template is None:
        raise APIError(
            400,
            f"model {model.id!r} has no chat template (a base model): use /v1/completions, or restart the "
            "server with --template NAME (see `tuneforge ls templates`)",
            param="model",
        )
    try:
        conv = openai.convert({"messages": messages, "tools": tools}, openai.DEFAULT_COLUMNS, {})
    except RowError as e:
        raise APIError(400, str(e), param="messages") from None
    for i, m in enumerate(conv.messages):
        if m.role not in ROLES:
            raise APIError(
                400, f"messages[{i}].role {m.role!r}: use one of {', '.join(ROLES)}", param="messages"
            )
    template = Template(model.id, model.chat_template, model.stop_tokens)
    try:
        ids = render_prompt(conv.messages, tokenizer, template, conv.tools)
    except DataError as e:
        raise APIError(400, str(e), param="messages") from None
    if conv.tools:
        text = tokenizer.decode(ids)
        missing = [t["function"]["name"] for t in conv.tools if t["function"].get("name") not in text]
        if missing:
            raise APIError(
                400,
                f"the chat template of {model.id!r} does not render tools ({', '.join(missing)} missing from "
                "the prompt), so the model cannot see them; send the request without tools",
                param="tools",
            )
    return ids


def _generation(
    req, model: ServedModel, ids: list[int], max_new: int, tokenizer, stop_ids=None
) -> Generation:
    from tuneforge.inference.generate import stop_token_ids

    return Generation(
        prompt_ids=ids,
        adapter=model.adapter,
        max_new_tokens=max_new,
        temperature=req.temperature,
        top_p=req.top_p,
        seed=req.seed,
        stop_ids=stop_ids if stop_ids is not None else stop_token_ids(tokenizer, model.stop_tokens),
        stop_strings=req.stops(),
    )


async def _collect(job: Job, request: Request | None = None) -> str:
    """The whole answer; with ``request``, the generation stops as soon as that client hangs up."""
    watcher = asyncio.ensure_future(_cancel_on_disconnect(request, job)) if request else None
    try:
        return "".join([piece async for piece in job.pieces()])
    finally:
        if watcher:
            watcher.cancel()
        job.cancel.set()  # no-op when finished; stops the work if the client went away


async def _cancel_on_disconnect(request: Request, job: Job) -> None:
    # the body is read by now, so the next ASGI message is the disconnect (or nothing until we answer)
    while (await request.receive())["type"] != "http.disconnect":
        pass
    job.cancel.set()


def _finish(job: Job, calls: list) -> str:
    if calls:
        return "tool_calls"
    return "length" if job.outcome and job.outcome.finish_reason == "length" else "stop"


def _usage(job: Job, prompt_tokens: int) -> dict:
    done = job.outcome.completion_tokens if job.outcome else 0
    return {"prompt_tokens": prompt_tokens, "completion_tokens": done, "total_tokens": prompt_tokens + done}


def _sse(events, job: Job) -> StreamingResponse:
    async def body():
        try:
            async for event in events:
                yield f"data: {json.dumps(event)}\n\n"
            yield "data: [DONE]\n\n"
        finally:
            job.cancel.set()  # the client disconnected or the stream ended: free the worker

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def _chat_chunks(job: Job, meta: dict, prompt_tokens: int, tools: bool, include_usage: bool):
    def chunk(delta: dict, finish: str | None = None) -> dict:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {"object": "chat.completion.chunk", **meta, "choices": [choice]}

    yield chunk({"role": "assistant", "content": ""})
    try:
        if tools:  # a tool call is only recognisable once complete, so the answer comes in one piece
            content, calls = parse_tool_calls(await _collect(job))
            if calls:
                yield chunk({"tool_calls": [{"index": i, **c} for i, c in enumerate(calls)]})
            elif content:
                yield chunk({"content": content})
        else:
            calls = []
            async for piece in job.pieces():
                yield chunk({"content": piece})
    except APIError as e:
        yield e.body()
        return
    yield chunk({}, _finish(job, calls))
    if include_usage:
        yield {"object": "chat.completion.chunk", **meta, "choices": [], "usage": _usage(job, prompt_tokens)}


async def _completion_chunks(job: Job, meta: dict):
    def chunk(text: str, finish: str | None = None) -> dict:
        choice = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
        return {"object": "text_completion", **meta, "choices": [choice]}

    try:
        async for piece in job.pieces():
            yield chunk(piece)
    except APIError as e:
        yield e.body()
        return
    yield chunk("", _finish(job, []))
