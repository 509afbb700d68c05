"""filters.verify for the JSON-extraction goal: keep an answer only when it is one JSON object with
exactly the keys name, age and city, the age a whole number, and every value found in the request's
text, so a kept answer is right without anyone having written the reference (rejection sampling)."""

from __future__ import annotations

import json
import re


def extraction_is_right(prompt: str, answer: str) -> bool:
    text = prompt.split(":", 1)[-1]  # the text after the instruction
    try:
        value = json.loads(answer.strip().removeprefix("```json").removeprefix("```").removesuffix("```"))
    except json.JSONDecodeError:
        return False
    if not isinstance(value, dict) or set(value) != {"name", "age", "city"}:
        return False
    name, age, city = value["name"], value["age"], value["city"]
    if not (isinstance(name, str) and isinstance(city, str) and type(age) is int):
        return False
    words = lambda s: re.findall(r"[A-Za-z]+", s)  # noqa: E731
    return (
        len(words(name)) >= 2
        and name in text
        and re.search(rf"\b{age}\b", text) is not None
        and re.search(rf"\b{re.escape(city)}\b", text) is not None
        and city not in name
    )
