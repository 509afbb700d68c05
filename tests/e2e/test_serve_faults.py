"""`tuneforge serve` under fault conditions, on a real uvicorn server on 127.0.0.1 with a scripted
backend (no weights): a burst far past the queue, clients that hang up, hostile request bodies,
the API key's scheme, and adapter names that look like paths."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import threading
import time

import pytest

from tests.helpers.serving import ScriptedBackend, http, write_fake_run

KEY = "test-key"
HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def scripted(tiny_qwen2_dir, tokenizer):
    """start(text, delay, **build_server options) -> (running server, backend)."""
    from tuneforge.serve import build_catalog, build_server, start_server

    def start(text="hello there", delay=0.0, **options):
        catalog = build_catalog(str(tiny_qwen2_dir), template="qwen", name="q")
        backend = ScriptedBackend(tokenizer, text, delay)
        app, engine = build_server(catalog, backend_instance=backend, **options)
        return start_server(app, engine), backend

    return start


def _lower(headers: dict) -> dict:
    return {k.lower(): v for k, v in headers.items()}


def test_a_burst_of_50_gets_answers_or_json_429s_with_retry_after(scripted):
    """Every refusal is the engine's: never the HTTP server's own plain-text 503."""
    srv, _ = scripted("one two three four five", delay=0.02, max_concurrency=1, max_queue=4)
    url = srv.url + "/v1/chat/completions"
    start = threading.Barrier(50)

    def one(i):
        start.wait()
        return http(url, {"model": "q", "messages": [{"role": "user", "content": f"n {i}"}]}, timeout=120)

    with srv, concurrent.futures.ThreadPoolExecutor(50) as pool:
        results = list(pool.map(one, range(50), timeout=180))
        after = http(url, {"model": "q", "messages": HI})
    statuses = [code for code, _, _ in results]
    assert set(statuses) <= {200, 429}, [(c, b) for c, _, b in results if c not in (200, 429)][:3]
    assert 200 in statuses and 429 in statuses, statuses
    for code, headers, body in results:
        if code == 429:
            assert int(_lower(headers)["retry-after"]) >= 1
            assert body["error"]["code"] == "server_busy" and "server busy" in body["error"]["message"]
        else:
            assert body["choices"][0]["message"]["content"] == "one two three four five"
    assert after[0] == 200


def _hang_up_after_sending(url: str, body: dict, backend: ScriptedBackend) -> None:
    """Send a non-streaming request on a raw socket and close it once generation has begun."""
    host, port = url.removeprefix("http://").split(":")
    data = json.dumps(body).encode()
    sock = socket.create_connection((host, int(port)))
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    sock.sendall(head.encode() + data)
    deadline = time.monotonic() + 10
    while not backend.calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert backend.calls, "generation never started"
    sock.close()


def test_a_non_streaming_client_that_hangs_up_frees_the_worker(scripted):
    srv, backend = scripted("word " * 400, delay=0.05)  # 20 s if it runs to the end
    with srv:
        _hang_up_after_sending(srv.url, {"model": "q", "messages": HI, "max_tokens": 400}, backend)
        assert backend.cancelled.wait(5), "generation went on for a client that left"
        began = time.monotonic()
        code, _, answer = http(
            srv.url + "/v1/chat/completions", {"model": "q", "messages": HI, "max_tokens": 2}
        )
        assert code == 200 and answer["choices"][0]["message"]["content"] == "word word"
        assert time.monotonic() - began < 5
        assert http(srv.url + "/health")[2]["in_flight"] == 0


def _nested(depth: int) -> bytes:
    inner = "[" * depth + "]" * depth
    return (
        '{"model": "q", "messages": [{"role": "user", "content": "hi"}], "extra": ' + inner + "}"
    ).encode()


@pytest.mark.parametrize(
    "body, param",
    [
        ({"model": "q", "messages": [{"role": "user", "content": None}]}, "messages"),
        ({"model": "q", "messages": [{"role": "system", "content": None}, *HI]}, "messages"),
        ({"model": "q", "messages": [{"role": "assistant", "content": None}]}, "messages"),
        ({"model": "q", "messages": HI, "seed": 2**80}, "seed"),
        ({"model": "q", "messages": HI, "seed": -(2**70)}, "seed"),
        (b'{"model": "q", "messages": [{"role": "user", "content": "a \\ud800 b"}]}', None),
        (b'{"model": "q", "messages": [{"role": "user", "content": "hi"}], "stop": ["\\udfff"]}', None),
        (b'{"model": "q\\ud800", "messages": [{"role": "user", "content": "hi"}]}', None),
        (_nested(100_000), None),
        (_nested(500), None),
    ],
    ids=[
        "user-null",
        "system-null",
        "assistant-null-without-tools",
        "seed-2**80",
        "seed--2**70",
        "lone-surrogate",
        "surrogate-in-stop",
        "surrogate-in-model",
        "nested-100000",
        "nested-500",
    ],
)
def test_bad_bodies_are_a_json_400_not_a_500(scripted, body, param):
    srv, backend = scripted(max_queue=4)
    with srv:
        code, _, answer = http(srv.url + "/v1/chat/completions", body)
    assert code == 400, answer
    message = answer["error"]["message"]
    assert "\n" not in message and len(message) < 300 and "internal error" not in message, message
    if param:
        assert answer["error"]["param"].startswith(param), answer
    assert not backend.calls


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "q", "prompt": "a \\ud800 b"}',
        {"model": "q", "prompt": "hi", "seed": 2**80},
        _nested(100_000).replace(b'"messages"', b'"prompt": "hi", "m"'),
    ],
    ids=["lone-surrogate", "seed-2**80", "nested-100000"],
)
def test_bad_completion_bodies_are_a_json_400(scripted, body):
    srv, backend = scripted()
    with srv:
        code, _, answer = http(srv.url + "/v1/completions", body)
    assert code == 400 and "internal error" not in answer["error"]["message"], answer
    assert not backend.calls


def test_an_assistant_tool_call_with_null_content_is_still_accepted(scripted):
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [
        *HI,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]
    srv, backend = scripted()
    with srv:
        code, _, answer = http(srv.url + "/v1/chat/completions", {"model": "q", "messages": messages})
    assert code == 200, answer
    assert len(backend.calls) == 1


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_bearer_scheme_is_case_insensitive(scripted, scheme):
    from tuneforge.serve import Limits

    srv, _ = scripted(limits=Limits(api_key=KEY))
    with srv:
        ok = http(srv.url + "/v1/models", headers={"Authorization": f"{scheme} {KEY}"})
        wrong = http(srv.url + "/v1/models", headers={"Authorization": f"{scheme} nope"})
        other = http(srv.url + "/v1/models", headers={"Authorization": f"Basic {KEY}"})
    assert ok[0] == 200 and [m["id"] for m in ok[2]["data"]] == ["q"]
    assert wrong[0] == 401 and other[0] == 401 and wrong[2]["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", "a\\b", ".hidden", "a b", ""])
def test_adapter_names_that_look_like_paths_are_refused(tiny_qwen2_dir, tmp_path, name):
    from tuneforge.errors import ConfigError
    from tuneforge.serve import build_catalog

    run = write_fake_run(tmp_path / "run", tiny_qwen2_dir)
    assert "ok" in build_catalog(str(tiny_qwen2_dir), [f"ok={run}"], template="qwen").models
    with pytest.raises(ConfigError) as err:
        build_catalog(str(tiny_qwen2_dir), [f"{name}={run}"], template="qwen")
    message = str(err.value)
    spec = f"{name}={run}"
    assert message.startswith(f"--adapter {spec!r}") and "\n" not in message, message
