"""The server's pure parts: request parsing, tool-call parsing, stop strings in a token stream,
admission control."""

from __future__ import annotations

import asyncio
import json

import pytest

from tuneforge.serve.backends import Generation, Outcome, TextStream
from tuneforge.serve.engine import Engine
from tuneforge.serve.protocol import APIError, ChatRequest, parse, parse_tool_calls


def test_hermes_tool_calls_are_parsed():
    text = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    content, calls = parse_tool_calls(text)
    assert content == "Let me check."
    assert calls[0]["type"] == "function" and calls[0]["function"]["name"] == "get_weather"
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
    assert calls[0]["id"].startswith("call-")


def test_two_tool_calls_and_llama_style_bare_json():
    two = '<tool_call>{"name": "a", "arguments": {}}</tool_call><tool_call>{"name": "b", "arguments": {"x": 1}}</tool_call>'
    assert [c["function"]["name"] for c in parse_tool_calls(two)[1]] == ["a", "b"]
    content, calls = parse_tool_calls('{"name": "lookup", "parameters": {"q": "tuneforge"}}')
    assert content == "" and json.loads(calls[0]["function"]["arguments"]) == {"q": "tuneforge"}


@pytest.mark.parametrize("text", ["Plain answer.", "<tool_call>{not json}</tool_call>", '{"no": "name"}'])
def test_text_without_a_valid_call_stays_content(text):
    assert parse_tool_calls(text) == (text, [])


def test_bad_requests_name_the_field():
    with pytest.raises(APIError) as e:
        parse(ChatRequest, b"{not json")
    assert e.value.status == 400 and "not valid JSON" in e.value.message
    with pytest.raises(APIError) as e:
        parse(ChatRequest, json.dumps({"model": "m", "messages": [], "temperature": 0}).encode())
    assert e.value.param == "messages"
    with pytest.raises(APIError) as e:
        parse(ChatRequest, json.dumps({"model": "m", "messages": [{}], "temperature": 9}).encode())
    assert e.value.param == "temperature" and "less than or equal to 2" in e.value.message
    req = parse(ChatRequest, json.dumps({"model": "m", "messages": [{}], "n": 2}).encode())
    with pytest.raises(APIError, match="n=2 is not supported"):
        req.check_supported()


def test_text_stream_holds_back_a_possible_stop_and_cuts_before_it(tokenizer):
    ids = tokenizer("Hello world. STOP here", add_special_tokens=False)["input_ids"]
    pieces: list[str] = []
    stream = TextStream(tokenizer, ["STOP"], pieces.append)
    for t in ids:
        stream.add([t])
        assert "S" not in "".join(pieces)  # " S" could start "STOP": never sent early
    stream.finish()
    assert "".join(pieces) == "Hello world. " and stream.stopped


def test_text_stream_without_stops_sends_everything(tokenizer):
    text = "Grüße, 世界!"  # multi-byte characters split across tokens are sent whole
    pieces: list[str] = []
    stream = TextStream(tokenizer, [], pieces.append)
    for t in tokenizer(text, add_special_tokens=False)["input_ids"]:
        stream.add([t])
    stream.finish()
    assert "".join(pieces) == text and all("\ufffd" not in p for p in pieces)


class _Blocking:
    name = "blocking"

    def __init__(self):
        import threading

        self.release = threading.Event()

    def generate(self, job, emit, cancelled):
        self.release.wait(10)
        emit("ok")
        return Outcome("stop", 1)


def test_engine_refuses_past_its_queue_with_429_then_503_after_close():
    async def scenario():
        backend = _Blocking()
        engine = Engine(backend, max_concurrency=1, max_queue=1)
        gen = Generation(prompt_ids=[1], adapter=None, max_new_tokens=1)
        first, second = engine.submit(gen), engine.submit(gen)
        with pytest.raises(APIError) as busy:
            engine.submit(gen)
        assert busy.value.status == 429 and int(busy.value.headers["Retry-After"]) >= 1
        backend.release.set()
        texts = []
        for job in (first, second):
            texts.append([p async for p in job.pieces()])
        assert texts == [["ok"], ["ok"]] and engine.busy() == 0
        engine.submit(gen)  # room again
        engine.close()
        with pytest.raises(APIError) as closing:
            engine.submit(gen)
        assert closing.value.status == 503 and "Retry-After" in closing.value.headers

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_vllm_backend_without_vllm_or_gpu_is_a_clear_error():
    import importlib.util

    from tuneforge.errors import ConfigError
    from tuneforge.serve.choose import create_backend, vllm_available

    ok, why = vllm_available()
    if ok:
        pytest.skip("vLLM and a GPU are present")
    with pytest.raises(ConfigError, match="--backend vllm: vLLM is") as e:
        create_backend("vllm", catalog=None)
    assert "use --backend transformers" in str(e.value)
    assert ("not installed" in why) == (importlib.util.find_spec("vllm") is None)
    with pytest.raises(ConfigError, match="choose auto, transformers or vllm"):
        create_backend("tgi", catalog=None)
