"""The judge task: a loopback HTTP server that answers in OpenAI's chat.completions shape stands in
for a remote judge (rubric scores and the pairwise before/after win rate, computed by hand), a tiny
local model judges too, and an unreachable endpoint is a one-line error."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

import tuneforge.eval.tasks.generate as gen
from tuneforge.errors import ModelError
from tuneforge.eval.runner import parse_tasks
from tuneforge.eval.target import Target
from tuneforge.eval.tasks import judge as judge_task
from tuneforge.eval.tasks._base import TaskResult


def _verdict(prompt: str) -> str:
    """A deterministic judge: an answer mentioning Paris is good."""
    if "[Answer of assistant A]" in prompt:
        a = prompt.split("[Answer of assistant A]")[1].split("[Answer of assistant B]")[0]
        b = prompt.split("[Answer of assistant B]")[1]
        if ("Paris" in a) == ("Paris" in b):
            return "Equally good. [[C]]"
        return "A names the capital. [[A]]" if "Paris" in a else "B names the capital. [[B]]"
    answer = prompt.split("[Answer]")[1]
    return (
        "Correct.\nScore: 9"
        if "Paris" in answer
        else ("I cannot tell." if "???" in answer else "Wrong.\nScore: 2")
    )


class _Handler(BaseHTTPRequestHandler):
    calls: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.calls.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        reply = {
            "id": "x",
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": _verdict(body["messages"][-1]["content"])},
                }
            ],
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def endpoint():
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


@pytest.fixture()
def prompts(tmp_path) -> Path:
    rows = [{"prompt": f"Capital of France? ({i})", "answer": "Paris"} for i in range(4)]
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def _task(**raw):
    return parse_tasks([{"name": "judge", **raw}], "test")[0]


def test_parse_score_and_verdict():
    assert judge_task.parse_score("Good.\nScore: 8") == 8
    assert judge_task.parse_score("score=10") == 10
    assert judge_task.parse_score("Score: 3 ... on reflection, Score: **7**") == 7
    assert judge_task.parse_score("no grade") is None
    assert judge_task.parse_verdict("B is better [[B]]") == "B" and judge_task.parse_verdict("[[C]]") == "C"
    assert judge_task.parse_verdict("B") is None


def test_rubric_scores_through_an_openai_compatible_endpoint(endpoint, prompts, monkeypatch):
    replies = iter(["It is Paris.", "London", "???", "Paris, of course."])
    monkeypatch.setattr(gen, "answer", lambda target, ps, *a, **k: [next(replies) for _ in ps])
    monkeypatch.setenv("JUDGE_API_KEY", "sk-test")
    _Handler.calls.clear()
    cfg = _task(path=str(prompts), endpoint=endpoint, judge_model="judge-1", api_key_env="JUDGE_API_KEY")
    res = judge_task.run(cfg, Target(None, None, None, (), "after"))
    # scores 9, 2, (none), 9: mean of the parsed three = 20/3, 3 of 4 parsed
    assert res.metrics == {"score": pytest.approx(20 / 3), "parsed": 0.75}
    assert [s["score"] for s in res.samples] == [9, 2, None, 9]
    call = _Handler.calls[0]
    assert call["path"] == "/v1/chat/completions" and call["auth"] == "Bearer sk-test"
    assert call["body"]["model"] == "judge-1" and call["body"]["temperature"] == 0
    assert "[Reference answer]\nParis" in call["body"]["messages"][0]["content"]


def test_pairwise_win_rate_in_both_orders(endpoint, prompts):
    cfg = _task(path=str(prompts), endpoint=endpoint, judge_model="j", mode="pairwise")
    row = {"prompt": "Capital of France?", "answer": "Paris"}
    before = ["London", "Paris", "Rome", "Paris"]
    after = ["Paris", "Paris", "Berlin", "Lyon"]
    results = {
        side: TaskResult({}, samples=[{"prompt": row["prompt"], "prediction": p, "row": row} for p in preds])
        for side, preds in (("before", before), ("after", after))
    }
    out = judge_task.combine(cfg, results)
    # per prompt, both orders agree: win, tie, tie, loss -> points 1, .5, .5, 0 twice over
    assert out == {"after_win_rate": pytest.approx(0.5), "tie_rate": pytest.approx(0.5), "parsed": 1.0}


def test_local_model_judge(tiny_llama_dir, tokenizer, prompts, monkeypatch):
    monkeypatch.setattr(gen, "answer", lambda target, ps, *a, **k: ["Paris"] * len(ps))
    cfg = _task(path=str(prompts), judge_model=str(tiny_llama_dir), judge_max_tokens=8, limit=2)
    res = judge_task.run(cfg, Target(None, tokenizer, None, (), "after"))
    assert len(res.samples) == 2 and all(isinstance(s["judge_reply"], str) for s in res.samples)
    assert 0.0 <= res.metrics["parsed"] <= 1.0


def test_unreachable_endpoint_is_one_line(prompts, monkeypatch):
    monkeypatch.setattr(gen, "answer", lambda target, ps, *a, **k: ["x"] * len(ps))
    cfg = _task(path=str(prompts), endpoint="http://127.0.0.1:9/v1", judge_model="j", timeout=5)
    with pytest.raises(ModelError, match="unreachable"):
        judge_task.run(cfg, Target(None, None, None, (), "after"))
