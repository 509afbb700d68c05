"""The LLM-judge reward against a tiny OpenAI-compatible server on the loopback interface, and a local
judge model folder."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

import pytest

from tests.helpers.runs import http_server, reply_chat
from tuneforge.errors import ConfigError, TrainingError
from tuneforge.rewards.build import build_rewards
from tuneforge.rewards.config import RewardConfig
from tuneforge.rewards.judge import score_reply

SEEN: list[dict] = []


class _Judge(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        SEEN.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if "FAIL" in body["messages"][0]["content"]:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"boom")
            return
        text = body["messages"][0]["content"]
        reply = "Score: 9" if "Answer: 42" in text else "I cannot tell" if "Answer: ?" in text else "3"
        reply_chat(self, reply)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    SEEN.clear()
    with http_server(_Judge) as url:
        yield url


def test_score_reply():
    assert score_reply("8") == 0.8 and score_reply("Score: 12/10") == 1.0 and score_reply("none") is None


def test_endpoint_judge_scores_each_completion(server, monkeypatch):
    monkeypatch.setenv("JUDGE_API_KEY", "sk-test")
    (judge,), _, _ = build_rewards(
        [RewardConfig(judge=server, judge_model="tiny", api_key_env="JUDGE_API_KEY", weight=2.0)]
    )
    out = judge(
        prompts=["p"] * 3, completions=["42", "41", "?"], question=["6 x 7?"] * 3, answer=["42", "42", None]
    )
    assert out == [0.9, 0.3, None]
    first = SEEN[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer sk-test"
    assert first["body"]["model"] == "tiny"
    content = first["body"]["messages"][0]["content"]
    assert "Question: 6 x 7?" in content and "Reference answer: 42" in content
    assert "Reference answer" not in SEEN[2]["body"]["messages"][0]["content"]


def test_endpoint_errors_are_one_line(server):
    (judge,), _, _ = build_rewards([RewardConfig(judge=server)])
    with pytest.raises(TrainingError, match="HTTP 500"):
        judge(prompts=["p"], completions=["FAIL"], question=["q"], answer=[None])
    (judge,), _, _ = build_rewards([RewardConfig(judge="http://127.0.0.1:9/v1")])
    with pytest.raises(TrainingError, match="cannot be reached"):
        judge(prompts=["p"], completions=["x"], question=["q"], answer=[None])


def test_bad_judge_prompt_placeholder():
    with pytest.raises(ConfigError, match="judge_prompt: bad placeholder 'reply'"):
        build_rewards([RewardConfig(judge="http://127.0.0.1:9/v1", judge_prompt="Rate {reply}")])


def test_local_judge_model(tiny_llama_dir):
    (judge,), _, _ = build_rewards([RewardConfig(judge=str(tiny_llama_dir))])
    out = judge(prompts=["p", "p"], completions=["a", "b"], question=["q", "q"], answer=[None, None])
    assert len(out) == 2 and all(x is None or 0.0 <= x <= 1.0 for x in out)


def test_reward_and_eval_task_share_one_client(monkeypatch):
    """The judge reward and the `judge` eval task both get their replies from tuneforge.inference.judge."""
    import tuneforge.inference.judge as client
    from tuneforge.eval.runner import parse_tasks
    from tuneforge.eval.tasks import judge as judge_task

    calls = []

    def fake(base_url, model, prompt, **kw):
        calls.append((base_url, model, kw["max_tokens"]))
        return "Score: 7"

    monkeypatch.setattr(client, "ask_endpoint", fake)
    (reward,), _, _ = build_rewards([RewardConfig(judge="http://judge:1/v1", judge_model="r")])
    assert reward(prompts=["p"], completions=["c"], question=["q"], answer=[None]) == [0.7]
    task = parse_tasks(
        [{"name": "judge", "path": "x.jsonl", "endpoint": "http://judge:1/v1", "judge_model": "e"}], "t"
    )
    assert judge_task._ask(task[0], ["a"]) == ["Score: 7"]
    assert calls == [("http://judge:1/v1", "r", 8), ("http://judge:1/v1", "e", task[0].judge_max_tokens)]
