"""What a recipe asks through (`tuneforge.generate.recipes`): prompt templates (Jinja, sandboxed,
unknown variables an error), the teacher's replies as text or as JSON checked against a schema
(parsed, validated, asked again with the next seed on failure), the answer step every
request-writing recipe ends with, and each sample's provenance. What went wrong on the way (a call
that failed, output that did not parse) is counted in ``stats``."""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from tuneforge.errors import ConfigError, DataError
from tuneforge.generate.recipes._base import Sample
from tuneforge.generate.teacher import Ask, Reply, Teacher

JSON_RETRY_STRIDE = 100_000  # a JSON retry asks with seed + index + k x this: never another call's seed


class Context:
    def __init__(self, teacher: Teacher, system: str | None = None, verify: str | None = None):
        self.teacher = teacher
        self.system = system
        self.verify = verify  # filters.verify: FILE.py:FUNCTION
        self._verify_fn = None
        self.stats: Counter = Counter()
        self._templates: dict[str, object] = {}

    # -- templates

    def render(self, template: str, **variables) -> str:
        from jinja2 import StrictUndefined, TemplateError
        from jinja2.sandbox import SandboxedEnvironment

        if template not in self._templates:
            env = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False)
            try:
                self._templates[template] = env.from_string(template)
            except TemplateError as e:
                raise ConfigError(f"recipe prompt template {template[:60]!r}: {e}") from None
        try:
            return self._templates[template].render(**variables).strip()
        except TemplateError as e:
            raise ConfigError(
                f"recipe prompt template {template[:60]!r}: {e} (variables here: {', '.join(sorted(variables))})"
            ) from None

    @staticmethod
    def template_hash(template: str) -> str:
        return hashlib.sha256(template.encode("utf-8")).hexdigest()[:12]

    def conversation(self, user: str) -> list[dict]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return [*head, {"role": "user", "content": user}]

    # -- asking

    def ask(self, users: list[str], step: str, n: int = 1, temperature: float | None = None) -> list[Reply]:
        """The teacher's replies to each user message (``n`` answers each); failed calls counted."""
        asks = [Ask(self.conversation(u), index=i, n=n, temperature=temperature) for i, u in enumerate(users)]
        replies = self.teacher.ask(asks, step)
        self.stats["teacher call failed"] += sum(r.error is not None for r in replies)
        return replies

    def ask_json(self, users: list[str], step: str, schema: dict | None = None) -> list[Any]:
        """The teacher's reply to each user message as JSON (None where it never parsed or matched
        ``schema``, after the teacher's retries, each with another seed)."""
        out: list[Any] = [None] * len(users)
        todo = list(range(len(users)))
        for attempt in range(self.teacher.cfg.retries + 1):
            if not todo:
                break
            asks = [
                Ask(self.conversation(users[i]), index=i + attempt * JSON_RETRY_STRIDE, temperature=None)
                for i in todo
            ]
            replies = self.teacher.ask(asks, step if not attempt else f"{step} (again: unparseable)")
            left = []
            for i, reply in zip(todo, replies, strict=True):
                value = parse_json(reply.texts[0]) if reply.texts else None
                if value is not None and (schema is None or fits(value, schema)):
                    out[i] = value
                else:
                    left.append(i)
            todo = left
        self.stats["teacher output did not parse or fit its schema"] += len(todo)
        return out

    def answer(
        self, prompts: list[str], step: str, template: str, provenance: list[dict] | None = None, n: int = 1
    ) -> list[Sample]:
        """Samples of each request answered by the teacher (the answer step of most recipes), ``n``
        answers each, one sample per answer."""
        users = [self.render(template, prompt=p) for p in prompts]
        replies = self.ask(users, step, n=n)
        samples = []
        for k, (prompt, reply) in enumerate(zip(prompts, replies, strict=True)):
            if reply.error is not None:
                continue
            extra = provenance[k] if provenance else {}
            for j, text in enumerate(reply.texts):
                messages = [*self.conversation(prompt), {"role": "assistant", "content": text}]
                origin = {
                    **self.provenance(step, reply, template),
                    **({"answer": j} if n > 1 else {}),
                    **extra,
                }
                samples.append(Sample(messages, provenance=origin))
        return samples

    def origin(self, step: str, template: str, **more) -> dict:
        """Where a sample came from: the teacher, the recipe step and its template's hash."""
        return {
            "teacher": self.teacher.cfg.model,
            "step": step,
            "template": self.template_hash(template),
            **more,
        }

    def provenance(self, step: str, reply: Reply, template: str) -> dict:
        """`origin` and the sampling of the call that wrote the sample."""
        cfg = self.teacher.cfg
        return self.origin(step, template, seed=reply.seed, temperature=cfg.temperature, top_p=cfg.top_p)

    def verifier(self):
        """filters.verify's function, (prompt, answer) -> bool."""
        if not self.verify:
            raise ConfigError("recipe.score: verify needs filters.verify: FILE.py:FUNCTION")
        if self._verify_fn is None:  # loaded once: loading runs the user's file
            from tuneforge.rewards.build import load_user_function

            self._verify_fn = load_user_function(self.verify, "filters.verify")
        return self._verify_fn

    # -- inputs

    @staticmethod
    def read_prompts(given: list[str] | str, column: str, what: str) -> list[str]:
        """Prompts given inline, or read from a JSON / JSONL file's ``column``."""
        if isinstance(given, list):
            return [str(p) for p in given]
        from tuneforge.eval.tasks.generate import read_rows

        rows = read_rows(given, (column,), what)
        return [str(r[column]) for r in rows]


def parse_json(text: str) -> Any:
    """The first JSON value in a reply (```json fences and text around it allowed), else None."""
    decoder = json.JSONDecoder()
    for start, ch in enumerate(text):
        if ch in "[{":
            try:
                return decoder.raw_decode(text, start)[0]
            except json.JSONDecodeError:
                continue
    return None


def fits(value: Any, schema: dict) -> bool:
    jsonschema = _jsonschema()

    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError:
        return False
    except jsonschema.SchemaError as e:
        raise ConfigError(f"recipe JSON schema: {e.message}") from None
    return True


@functools.cache
def _jsonschema():
    from tuneforge.extras import require

    require("a JSON schema check of the teacher's output", "jsonschema")
    import jsonschema

    return jsonschema


def documents(paths: list[str], what: str) -> list[tuple[str, str]]:
    """(path, text) of every .txt / .md file given, folders walked in name order."""
    found = []
    for given in paths:
        p = Path(given)
        files = sorted(x for x in p.rglob("*") if x.suffix in (".txt", ".md")) if p.is_dir() else [p]
        for f in files:
            if not f.is_file():
                raise DataError(f"{what}: {f} does not exist")
            found.append((str(f), f.read_text(encoding="utf-8", errors="replace")))
    return found
