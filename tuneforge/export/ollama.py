"""`tuneforge export RUN --ollama DIR`: an Ollama Modelfile for the exported GGUF whose TEMPLATE (Go
template syntax), SYSTEM and stop PARAMETERs reproduce the run's chat template.

A jinja chat template cannot be translated in general, so it is measured instead: rendered with
marker strings for each role, which yields what it writes before and after a system, user and
assistant message, its generation prompt and any default system prompt. The Go template is built
from those pieces, and the result is checked by re-rendering a multi-turn conversation both ways;
a template that is not of this shape (one that rewrites earlier turns, say) is refused with a
message rather than exported wrong.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tuneforge.errors import ConfigError

_S, _U, _A = "TFsysMARK", "TFuserMARK", "TFasstMARK"


@dataclass(frozen=True)
class TurnShape:
    """What a chat template writes around each message."""

    before: dict[str, str]  # role -> text before the content
    after: dict[str, str]  # role -> text after the content
    generation: str  # the generation prompt (the assistant header)
    default_system: str | None  # the system prompt the template adds when none is given

    def render(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        """The conversation as this shape renders it (Ollama's semantics: SYSTEM first if none)."""
        if self.default_system is not None and (not messages or messages[0]["role"] != "system"):
            messages = [{"role": "system", "content": self.default_system}, *messages]
        text = "".join(self.before[m["role"]] + m["content"] + self.after[m["role"]] for m in messages)
        return text + (self.generation if add_generation_prompt else "")


def measure(chat_template: str, tokenizer) -> TurnShape:
    """The `TurnShape` of ``chat_template``; ConfigError if it is not one."""
    from tuneforge.data.templates import Template

    t = Template("run", chat_template, ())

    def render(msgs, gen=False):
        return t.render(tokenizer, [{"role": r, "content": c} for r, c in msgs], add_generation_prompt=gen)

    sys_only = render([("system", _S)])
    su = render([("system", _S), ("user", _U)])
    sua = render([("system", _S), ("user", _U), ("assistant", _A)])
    u = render([("user", _U)])
    try:
        before_sys, after_sys = sys_only.split(_S)
        head, user_part = su.split(_S + after_sys, 1)
        before_user, after_user = user_part.split(_U)
        before_asst, after_asst = sua.split(_U + after_user, 1)[1].split(_A)
        default = u.split(before_user + _U, 1)[0]
    except ValueError:
        raise _not_expressible("it does not render each message between a fixed prefix and suffix") from None
    generation = render([("system", _S), ("user", _U)], gen=True)[len(su) :]
    default_system = None
    if default:
        if not (default.startswith(before_sys) and default.endswith(after_sys)):
            raise _not_expressible("its default system prompt is not written like a system message")
        default_system = default[len(before_sys) : len(default) - len(after_sys)]
    shape = TurnShape(
        before={"system": before_sys, "user": before_user, "assistant": before_asst},
        after={"system": after_sys, "user": after_user, "assistant": after_asst},
        generation=generation,
        default_system=default_system,
    )
    for probe in _probes():
        if shape.render(probe) != t.render(tokenizer, probe, add_generation_prompt=True):
            raise _not_expressible(
                "re-rendering a multi-turn conversation from its pieces gave different text"
            )
    return shape


def _probes() -> list[list[dict]]:
    turns = [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ]
    return [turns, [{"role": "system", "content": "Be brief."}, *turns], turns[:1]]


def _not_expressible(why: str) -> ConfigError:
    return ConfigError(
        f"the run's chat template cannot be written as an Ollama TEMPLATE ({why}); export the GGUF alone "
        "(--gguf) and write the Modelfile's TEMPLATE by hand"
    )


def go_template(shape: TurnShape) -> str:
    """Ollama's TEMPLATE (Go text/template over .Messages) for ``shape``; no whitespace trimming, so
    every newline of the template is kept."""
    parts = ["{{ range .Messages }}"]
    for i, role in enumerate(("system", "user", "assistant")):
        parts.append(f'{{{{ {"if" if i == 0 else "else if"} eq .Role "{role}" }}}}')
        parts.append(f"{shape.before[role]}{{{{ .Content }}}}{shape.after[role]}")
    parts.append("{{ end }}{{ end }}")
    parts.append(shape.generation)
    text = "".join(parts)
    literal = "".join([*shape.before.values(), *shape.after.values(), shape.generation])
    if "{{" in literal or '"""' in literal or '"""' in (shape.default_system or ""):
        raise _not_expressible("its text contains '{{' or '\"\"\"'")
    return text


def write_modelfile(out_dir: Path, gguf_path: Path, chat_template: str, stop_tokens, tokenizer) -> Path:
    """Write ``out_dir/Modelfile`` for ``gguf_path``; returns its path."""
    from tuneforge.export.targets import MODELFILE_HEAD, check_file

    check_file(out_dir / "Modelfile", "--ollama", "modelfile")
    shape = measure(chat_template, tokenizer)
    out_dir.mkdir(parents=True, exist_ok=True)
    source = os.path.relpath(gguf_path.resolve(), out_dir.resolve())
    lines = [
        f"{MODELFILE_HEAD}; create the model with:",
        f"#   ollama create NAME -f {out_dir / 'Modelfile'}",
        f"FROM ./{source}" if not source.startswith("..") else f"FROM {gguf_path.resolve()}",
        f'TEMPLATE """{go_template(shape)}"""',
    ]
    if shape.default_system is not None:
        lines.append(f'SYSTEM """{shape.default_system}"""')
    lines += [f'PARAMETER stop "{token}"' for token in stop_tokens]
    path = out_dir / "Modelfile"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
