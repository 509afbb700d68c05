"""`tuneforge serve` end to end with the official `openai` client, on 127.0.0.1 only: two LoRA runs
of a tiny Llama served over one base, picked per request; streaming; stop strings; seeds; errors;
and a bounded burst of concurrent requests."""

from __future__ import annotations

import concurrent.futures
import json

import pytest

from tests.helpers.runs import ALPACA_ROWS, make_config, write_alpaca
from tests.helpers.serving import ScriptedBackend, http

openai = pytest.importorskip("openai")

KEY = "test-key"
HI = [{"role": "user", "content": "What is your name?"}]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_llama_dir):
    from tuneforge.config.load import validate
    from tuneforge.train import run_training

    out = {}
    # beta learns one word for every answer, so its greedy answer differs from alpha's whatever the
    # training's random draws (both adapters collapsing onto one token made the test prove nothing)
    beta_rows = [{**row, "output": "blue blue blue blue"} for row in ALPACA_ROWS]
    for name, rows, lr in [("alpha", ALPACA_ROWS, 1e-2), ("beta", beta_rows, 3e-2)]:
        tmp = tmp_path_factory.mktemp(name)
        cfg = make_config(tmp, tiny_llama_dir, write_alpaca(tmp / "d.json", rows))
        cfg["train"]["learning_rate"] = lr
        cfg["output"]["dir"] = str(tmp / name)
        out[name] = run_training(validate(cfg))
    return out


@pytest.fixture(scope="module")
def server(runs):
    from tuneforge.serve import Limits, build_catalog, build_server, start_server

    catalog = build_catalog(str(runs["alpha"]), [f"beta={runs['beta']}"])
    limits = Limits(max_tokens=32, max_request_bytes=20_000, api_key=KEY)
    app, engine = build_server(catalog, backend="transformers", limits=limits, max_queue=4)
    with start_server(app, engine) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=60)


def _expected(run_dir, messages, n, base=False):
    """Greedy answer of the run's model (or its base), as `tuneforge chat` computes it."""
    from tuneforge.artifacts import load_run
    from tuneforge.inference.generate import generate_answers

    run = load_run(run_dir, base_only=base)
    return generate_answers(
        run.model,
        run.tokenizer,
        [messages],
        chat_template=run.chat_template,
        stop_tokens=run.stop_tokens,
        max_new_tokens=n,
    )[0]


def test_models_lists_the_run_its_base_and_the_extra_adapter(client):
    assert sorted(m.id for m in client.models.list()) == ["alpha", "base", "beta"]


def test_each_model_id_answers_with_its_own_weights(client, runs):
    answers = {}
    for model in ["alpha", "beta", "base", "alpha"]:  # back to alpha: switching is not sticky
        r = client.chat.completions.create(model=model, messages=HI, max_tokens=8, temperature=0)
        answers[model] = r.choices[0].message.content.strip()
        assert r.usage.completion_tokens <= 8 and r.usage.prompt_tokens > 5
    assert answers["alpha"] == _expected(runs["alpha"], HI, 8)
    assert answers["beta"] == _expected(runs["beta"], HI, 8)
    assert answers["base"] == _expected(runs["alpha"], HI, 8, base=True)
    assert len(set(answers.values())) == 3, "the adapters made no difference: the test proves nothing"


def test_stream_matches_the_whole_answer(client):
    whole = client.chat.completions.create(model="alpha", messages=HI, max_tokens=10, temperature=0)
    stream = client.chat.completions.create(
        model="alpha",
        messages=HI,
        max_tokens=10,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_stop_string_ends_the_answer_before_it(client):
    ask = dict(model="base", messages=HI, max_tokens=16, temperature=1.0, seed=5)  # varied, repeatable
    text = client.chat.completions.create(**ask).choices[0].message.content
    middle = text.strip()[len(text.strip()) // 2 :]
    stop = middle[:2]
    assert len(stop) == 2 and stop.strip(), text
    cut = client.chat.completions.create(**ask, stop=[stop, "never-seen"])
    assert cut.choices[0].message.content == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_seeded_sampling_repeats_and_top_p_is_honoured(client):
    def ask(seed, top_p=1.0):
        r = client.chat.completions.create(
            model="beta", messages=HI, max_tokens=12, temperature=1.5, top_p=top_p, seed=seed
        )
        return r.choices[0].message.content

    assert ask(7) == ask(7)
    assert len({ask(s) for s in range(4)}) > 1, "sampling ignored the seed / temperature"
    greedy = client.chat.completions.create(model="beta", messages=HI, max_tokens=12, temperature=0)
    assert ask(3, top_p=1e-6) == greedy.choices[0].message.content  # top_p ~0 keeps only the top token


def test_text_completion(client, runs):
    r = client.completions.create(model="base", prompt="The sky is", max_tokens=5, temperature=0)
    assert r.object == "text_completion" and r.choices[0].finish_reason in ("stop", "length")
    streamed = client.completions.create(
        model="base", prompt="The sky is", max_tokens=5, temperature=0, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed) == r.choices[0].text


def test_errors_are_one_clean_line(server, client):
    url = server.url + "/v1/chat/completions"
    cases = [
        (401, None, {"model": "alpha", "messages": HI}),
        (400, KEY, b"{not json"),
        (404, KEY, {"model": "gamma", "messages": HI}),
        (400, KEY, {"model": "alpha", "messages": HI, "temperature": 3}),
        (400, KEY, {"model": "alpha", "messages": HI, "max_tokens": 1000}),
        (400, KEY, {"model": "alpha", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
        (400, KEY, {"model": "alpha", "messages": HI, "n": 3}),
        (400, KEY, {"model": "alpha", "messages": HI, "tools": [_weather_tool()]}),  # ChatML: no tools
        (413, KEY, {"model": "alpha", "messages": [{"role": "user", "content": "x" * 30_000}]}),
        (400, KEY, {"model": "alpha", "messages": [{"role": "user", "content": "word " * 600}]}),
    ]
    for status, key, body in cases:
        code, _, answer = http(url, body, key=key)
        assert code == status, (body, answer)
        message = answer["error"]["message"]
        assert "\n" not in message and "Traceback" not in message and len(message) < 300, message
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError, match="choose one of alpha, base, beta"):
        client.chat.completions.create(model="gamma", messages=HI)
    with pytest.raises(openai.BadRequestError, match="over this server's limit of 32"):
        client.chat.completions.create(model="alpha", messages=HI, max_tokens=33)


def test_a_burst_is_answered_or_cleanly_refused_and_serving_goes_on(server, client):
    """16 concurrent requests against 1 worker + a queue of 4: each one either completes or gets 429
    with Retry-After, nothing hangs, and the server answers normally afterwards."""

    def one(i):
        try:
            r = client.chat.completions.with_raw_response.create(
                model=["alpha", "beta", "base"][i % 3],
                messages=[{"role": "user", "content": f"Count to {i}."}],
                max_tokens=6,
                temperature=0,
            )
            done = r.parse()
            return "ok", done.choices[0].finish_reason, done.choices[0].message.content
        except openai.RateLimitError as e:
            return "429", e.response.headers.get("retry-after"), e.message

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(16), timeout=120))
    ok = [r for r in results if r[0] == "ok"]
    refused = [r for r in results if r[0] == "429"]
    assert len(ok) + len(refused) == 16
    assert ok and refused, results
    assert all(r[1] in ("stop", "length") and isinstance(r[2], str) for r in ok)
    assert all(r[1] and int(r[1]) >= 1 and "server busy" in r[2] for r in refused)
    after = client.chat.completions.create(model="alpha", messages=HI, max_tokens=4, temperature=0)
    assert after.choices[0].finish_reason in ("stop", "length")
    assert http(server.url + "/health")[2]["in_flight"] == 0


def test_example_client_runs(server, capsys, monkeypatch):
    import runpy
    import sys
    from pathlib import Path

    script = Path(__file__).parents[2] / "examples" / "serve" / "client.py"
    argv = [
        str(script),
        "--base-url",
        server.url + "/v1",
        "--api-key",
        KEY,
        "--model",
        "beta",
        "--max-tokens",
        "6",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "served: alpha, base, beta" in out
    whole = next(line for line in out.splitlines() if line.startswith("beta: "))
    streamed = next(line for line in out.splitlines() if line.startswith("beta (streamed): "))
    # both greedy: the same text, streamed or not
    assert streamed.removeprefix("beta (streamed): ") == whole.removeprefix("beta: ").rsplit(" [", 1)[0]


# --- the HTTP layer with scripted model output ------------------------------------------------


def _weather_tool() -> dict:
    params = {"type": "object", "properties": {"city": {"type": "string"}}}
    return {"type": "function", "function": {"name": "get_weather", "parameters": params}}


@pytest.fixture
def scripted(tiny_qwen2_dir, tokenizer):
    """A server whose 'model' always answers with a tool call, under Qwen2.5's template (which
    renders tools); the real weights are never loaded."""
    from tuneforge.serve import build_catalog, build_server, start_server

    def make(text, delay=0.0):
        catalog = build_catalog(str(tiny_qwen2_dir), template="qwen", name="q")
        backend = ScriptedBackend(tokenizer, text, delay)
        app, engine = build_server(catalog, backend_instance=backend)
        return start_server(app, engine), backend

    return make


def test_tool_calls_come_back_as_openai_tool_calls(scripted):
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    srv, backend = scripted(call)
    with srv:
        client = openai.OpenAI(base_url=srv.url + "/v1", api_key="none", max_retries=0)
        ask = dict(
            model="q", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=[_weather_tool()]
        )
        r = client.chat.completions.create(**ask)
        choice = r.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content is None
        assert choice.message.tool_calls[0].function.name == "get_weather"
        assert json.loads(choice.message.tool_calls[0].function.arguments) == {"city": "Paris"}
        prompt = backend.tokenizer.decode(backend.calls[0].prompt_ids)
        assert "<tools>" in prompt and '"get_weather"' in prompt  # the template showed the tool
        chunks = list(client.chat.completions.create(**ask, stream=True))
        calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
        assert calls[0].function.name == "get_weather"
        assert chunks[-1].choices[0].finish_reason == "tool_calls"
        # the tool's answer goes back in, and the follow-up renders it as Qwen's <tool_response>
        follow = [
            *ask["messages"],
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": choice.message.tool_calls[0].id, "content": "18 C"},
        ]
        client.chat.completions.create(model="q", messages=follow, tools=ask["tools"])
        assert "<tool_response>\n18 C\n</tool_response>" in backend.tokenizer.decode(
            backend.calls[-1].prompt_ids
        )


def test_a_client_that_hangs_up_frees_the_worker(scripted):
    srv, backend = scripted("word " * 400, delay=0.02)
    with srv:
        client = openai.OpenAI(base_url=srv.url + "/v1", api_key="none", max_retries=0)
        stream = client.chat.completions.create(model="q", messages=HI, max_tokens=400, stream=True)
        next(iter(stream)), next(iter(stream))
        stream.close()
        assert backend.cancelled.wait(10), "generation went on for a client that left"
        assert http(srv.url + "/health")[2]["in_flight"] == 0


def test_adapter_flag_errors_name_the_fix(runs, tiny_qwen2_dir, tmp_path):
    from tuneforge.errors import ConfigError
    from tuneforge.serve import build_catalog

    with pytest.raises(ConfigError, match="write NAME=RUN_DIR"):
        build_catalog(str(runs["alpha"]), [str(runs["beta"])])
    with pytest.raises(ConfigError, match="already taken"):
        build_catalog(str(runs["alpha"]), [f"alpha={runs['beta']}"])
    with pytest.raises(ConfigError, match="adapters share one base"):
        build_catalog(str(tiny_qwen2_dir), [f"b={runs['beta']}"])
