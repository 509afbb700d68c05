"""tests/helpers/scripted_server.py: the offline OpenAI-compatible server the data generation tests
use as a teacher and judge (answers, usage, recorded calls, injected failures, auth), checked with
urllib and with the official openai client."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.helpers.scripted_server import Call, ScriptedServer, echo_last_user, json_answer

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "name three colours"},
]


def request(url, body=None, *, key=None, timeout=5.0, raw: bytes | None = None):
    """(status, headers, body bytes) of one request; HTTP errors are returned, not raised."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def chat(server, *, key=None, timeout=5.0, **body):
    body = {"model": "teacher", "messages": MESSAGES, **body}
    return request(server.base_url + "/chat/completions", body, key=key, timeout=timeout)


def chat_json(server, **kw):
    status, _, raw = chat(server, **kw)
    return status, json.loads(raw)


@pytest.fixture
def server():
    with ScriptedServer(echo_last_user) as s:
        yield s


# ---- normal answers ---------------------------------------------------------------------------


def test_normal_call_returns_the_answer_and_usage(server):
    assert server.base_url.startswith("http://127.0.0.1:") and server.base_url.endswith("/v1")
    status, body = chat_json(server)
    assert status == 200
    assert body["object"] == "chat.completion" and body["model"] == "teacher"
    assert isinstance(body["id"], str) and isinstance(body["created"], int)
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "answer: name three colours"},
            "finish_reason": "stop",
        }
    ]
    # words: "You are terse." (3) + "name three colours" (3); "answer: name three colours" (4)
    assert body["usage"] == {"prompt_tokens": 6, "completion_tokens": 4, "total_tokens": 10}


def test_n_with_a_list_answer_gives_one_choice_per_item():
    with ScriptedServer(lambda call: [f"a{i} b" for i in range(call.params["n"])]) as s:
        status, body = chat_json(s, n=3)
    assert status == 200
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert [c["message"]["content"] for c in body["choices"]] == ["a0 b", "a1 b", "a2 b"]
    assert body["usage"]["completion_tokens"] == 6


def test_n_with_a_string_answer_repeats_it(server):
    _, body = chat_json(server, n=2)
    assert [c["message"]["content"] for c in body["choices"]] == ["answer: name three colours"] * 2
    assert body["usage"]["completion_tokens"] == 8


def test_a_broken_answer_function_gives_500_and_is_kept_in_errors():
    with ScriptedServer(lambda call: ["only one"]) as s:
        status, body = chat_json(s, n=2)
        assert status == 500 and body["error"]["type"] == "scripted_answer_error"
        assert len(s.errors) == 1 and "1 answers for n=2" in str(s.errors[0])


def test_calls_record_model_messages_params_and_headers(server):
    chat(
        server, key="secret", temperature=0.7, seed=11, max_tokens=32, response_format={"type": "json_object"}
    )
    chat(server, seed=12)
    assert len(server.calls) == 2
    first = server.calls[0]
    assert isinstance(first, Call)
    assert first.model == "teacher" and first.messages == MESSAGES
    assert first.params == {
        "temperature": 0.7,
        "seed": 11,
        "max_tokens": 32,
        "response_format": {"type": "json_object"},
    }
    assert first.headers["authorization"] == "Bearer secret"
    assert first.failure is None
    assert server.calls[1].params == {"seed": 12}


def test_helpers():
    call = Call("m", [{"role": "user", "content": "one"}, {"role": "assistant", "content": "x"}], {}, {})
    assert echo_last_user(call) == "answer: one"
    assert json_answer({"score": 4, "why": "ok"})(call) == '{"score": 4, "why": "ok"}'
    with ScriptedServer(json_answer({"ok": True})) as s:
        _, body = chat_json(s)
    assert json.loads(body["choices"][0]["message"]["content"]) == {"ok": True}


# ---- injected failures ------------------------------------------------------------------------


def test_429_has_a_json_error_and_retry_after(server):
    server.fail_next("429", retry_after=7)
    server.fail_next("429")
    status, headers, raw = chat(server)
    assert status == 429 and headers["Retry-After"] == "7"
    assert json.loads(raw)["error"]["code"] == 429
    status, headers, _ = chat(server)
    assert status == 429 and headers["Retry-After"] == "0"
    assert chat(server)[0] == 200


def test_500(server):
    server.fail_next("500")
    status, _, raw = chat(server)
    assert status == 500 and "error" in json.loads(raw)
    assert chat(server)[0] == 200


def test_timeout_makes_a_short_client_timeout_raise(server):
    server.fail_next("timeout", seconds=1.5)
    with pytest.raises((TimeoutError, urllib.error.URLError)) as info:
        chat(server, timeout=0.5)
    if isinstance(info.value, urllib.error.URLError):
        assert isinstance(info.value.reason, TimeoutError)
    assert chat_json(server)[0] == 200  # the next one answers at once


def test_timeout_then_answers_normally_for_a_patient_client(server):
    server.fail_next("timeout", seconds=0.3)
    start = time.monotonic()
    status, body = chat_json(server, timeout=5)
    assert status == 200 and body["choices"][0]["message"]["content"] == "answer: name three colours"
    assert time.monotonic() - start >= 0.3


def test_malformed_is_200_with_a_body_that_is_not_json(server):
    server.fail_next("malformed")
    status, _, raw = chat(server)
    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)


def test_no_choices(server):
    server.fail_next("no_choices")
    status, body = chat_json(server)
    assert status == 200 and "choices" not in body


def test_drop_closes_the_connection_without_a_response(server):
    server.fail_next("drop")
    with pytest.raises((ConnectionError, http.client.HTTPException, urllib.error.URLError)):
        chat(server)
    assert chat(server)[0] == 200


def test_failures_apply_in_order_for_times_then_calls_succeed(server):
    server.fail_next("500", times=2)
    server.fail_next("429")
    assert server.pending_failures == ["500", "500", "429"]
    assert [chat(server)[0] for _ in range(5)] == [500, 500, 429, 200, 200]
    assert [c.failure for c in server.calls] == ["500", "500", "429", None, None]  # failures recorded too
    assert server.pending_failures == []


def test_concurrent_requests_are_all_recorded_and_failures_used_exactly_once(server):
    server.fail_next("500", times=4)
    statuses: list[int] = []
    lock = threading.Lock()

    def one():
        status = chat(server)[0]
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(statuses) == [200] * 8 + [500] * 4
    assert len(server.calls) == 12 and sum(c.failure == "500" for c in server.calls) == 4


def test_fail_next_rejects_unknown_kinds_and_options(server):
    with pytest.raises(ValueError, match="unknown failure kind"):
        server.fail_next("503")
    with pytest.raises(TypeError, match="retry_after"):
        server.fail_next("500", retry_after=1)
    with pytest.raises(ValueError):
        server.fail_next("500", times=-1)
    assert server.pending_failures == []


def test_stop_does_not_wait_for_a_sleeping_timeout_request():
    s = ScriptedServer(echo_last_user).start()
    s.fail_next("timeout", seconds=30)
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        chat(s, timeout=0.3)
    start = time.monotonic()
    s.stop()
    assert time.monotonic() - start < 2


# ---- auth, routes, bad requests ---------------------------------------------------------------


def test_api_key_is_required_when_set():
    with ScriptedServer(echo_last_user, api_key="sk-test") as s:
        s.fail_next("500")
        status, _, raw = chat(s)
        assert status == 401 and json.loads(raw)["error"]["code"] == 401
        assert chat(s, key="wrong")[0] == 401
        assert request(s.base_url + "/models")[0] == 401
        assert s.pending_failures == ["500"]  # a refused request does not use up a failure
        assert chat(s, key="sk-test")[0] == 500
        assert chat(s, key="sk-test")[0] == 200
        assert request(s.base_url + "/models", key="sk-test")[0] == 200
        assert len(s.calls) == 4


def test_models(server):
    status, _, raw = request(server.base_url + "/models")
    assert status == 200 and json.loads(raw)["data"][0]["id"] == "scripted"
    with ScriptedServer(echo_last_user, model="teacher-7b") as s:
        assert json.loads(request(s.base_url + "/models")[2])["data"] == [
            {"id": "teacher-7b", "object": "model", "owned_by": "scripted"}
        ]


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[1, 2]",
        json.dumps({"model": "m"}).encode(),
        json.dumps({"messages": MESSAGES}).encode(),
        json.dumps({"model": "m", "messages": "hi"}).encode(),
        json.dumps({"model": "m", "messages": MESSAGES, "stream": True}).encode(),
        json.dumps({"model": "m", "messages": MESSAGES, "n": 0}).encode(),
    ],
)
def test_malformed_request_bodies_get_400(server, raw):
    status, _, body = request(server.base_url + "/chat/completions", raw=raw)
    assert status == 400 and json.loads(body)["error"]["type"] == "invalid_request_error"


def test_unknown_route_is_404(server):
    assert request(server.base_url + "/completions", {"model": "m", "prompt": "x"})[0] == 404


# ---- the official openai client ---------------------------------------------------------------


def test_openai_client_against_the_server():
    openai = pytest.importorskip("openai")
    with ScriptedServer(echo_last_user, api_key="k") as s:
        client = openai.OpenAI(base_url=s.base_url, api_key="k", max_retries=0)
        r = client.chat.completions.create(
            model="teacher", messages=MESSAGES, temperature=0.2, seed=5, n=2, max_tokens=16
        )
        assert [c.message.content for c in r.choices] == ["answer: name three colours"] * 2
        assert r.choices[0].finish_reason == "stop" and r.model == "teacher"
        assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (6, 8, 14)
        call = s.calls[-1]
        assert call.params == {"temperature": 0.2, "seed": 5, "n": 2, "max_tokens": 16}
        assert call.headers["authorization"] == "Bearer k"
        assert [m.id for m in client.models.list()] == ["scripted"]


def test_openai_client_sees_the_injected_failures_as_its_own_errors():
    openai = pytest.importorskip("openai")
    with ScriptedServer(echo_last_user) as s:
        client = openai.OpenAI(base_url=s.base_url, api_key="k", max_retries=0, timeout=0.5)

        def create():
            return client.chat.completions.create(model="teacher", messages=MESSAGES)

        for kind, error in [
            ("429", openai.RateLimitError),
            ("500", openai.InternalServerError),
            ("drop", openai.APIConnectionError),
            ("timeout", openai.APITimeoutError),
        ]:
            s.fail_next(kind, **({"seconds": 1.5} if kind == "timeout" else {}))
            with pytest.raises(error):
                create()
        # the two 200s the client does not turn into an openai error: a caller must check for them
        s.fail_next("malformed")
        with pytest.raises(json.JSONDecodeError):
            create()
        s.fail_next("no_choices")
        assert not create().choices
        assert create().choices[0].message.content == "answer: name three colours"
        assert [c.failure for c in s.calls] == [
            "429",
            "500",
            "drop",
            "timeout",
            "malformed",
            "no_choices",
            None,
        ]
