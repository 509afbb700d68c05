"""A scripted teacher for `tuneforge data generate` tests: answers each recipe's prompts the way a
cooperative model would (JSON where JSON is asked for), deterministically from the call's seed, so
tests can count what is kept and dropped."""

from __future__ import annotations

import json
import re

from tests.helpers.scripted_server import Call


def _last_user(call: Call) -> str:
    return next(m["content"] for m in reversed(call.messages) if m["role"] == "user")


def teacher(call: Call) -> str | list[str]:
    text, seed, n = _last_user(call), int(call.params.get("seed", 0)), int(call.params.get("n", 1))
    if "distinct subtopics of" in text:
        topic = re.search(r'subtopics of "(.*?)"', text).group(1)
        k = int(re.search(r"List (\d+)", text).group(1))
        return json.dumps([f"{topic} part {i}" for i in range(k)])
    if "requests a user might send about" in text:
        topic = re.search(r'about "(.*?)"', text).group(1)
        k = int(re.search(r"Write (\d+)", text).group(1))
        return json.dumps([f"Question {i} about {topic}?" for i in range(k)])
    if "Write one new request" in text:
        return json.dumps({"request": f"Explain idea number {seed} in simple words for a curious child"})
    if "Rewrite the prompt" in text:
        prompt = text.split("Prompt: ", 1)[1].split("\n", 1)[0]
        return json.dumps({"prompt": f"{prompt} Give three reasons and one example."})
    if "Here is a passage" in text:
        return json.dumps(
            [
                {"question": f"What does sentence {i} of the passage say?", "answer": f"It says thing {i}."}
                for i in range(2)
            ]
        )
    if text.startswith("Rate the answer"):
        answer = text.split("Answer: ", 1)[1].rsplit("\n\nAnswer with JSON", 1)[0]
        return json.dumps({"score": 5 if "good" in answer else 2})
    if text.startswith("Judge the answer"):
        answer = text.split("Answer: ", 1)[1].rsplit("\n\nAnswer with JSON", 1)[0]
        return json.dumps({"verdict": "FAIL" if "refuse" in answer else "PASS"})
    if text.startswith("Here is a tool"):
        return json.dumps(
            [
                {"request": "What is the weather in Paris?", "arguments": {"city": "Paris"}},
                {"request": "Weather in Rome please", "arguments": {"city": "Rome"}},
                {"request": "Weather, no city", "arguments": {"town": 3}},  # does not fit the schema
            ]
        )
    if n > 1:  # preference sampling: one good answer, the rest plain
        return [f"{'good' if i == 0 else 'plain'} answer {i} to: {text}" for i in range(n)]
    return f"Here is an answer to: {text}"
