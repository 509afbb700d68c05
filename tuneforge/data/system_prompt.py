"""A run's default system prompt (``data.default_system``): step 3 of a run, right after the chat
template is resolved and before any data is rendered.

Many chat templates add their own system prompt when a conversation has none (SmolLM2's names
SmolLM and Hugging Face; Qwen2.5's names Qwen and Alibaba Cloud). A run that teaches a new identity
must replace it, or the old name comes back whenever a user gives no system prompt. The run's
template itself is changed, so every place that renders with it (training data, compare, chat,
serve, the merged model's and the GGUF's template, the Ollama Modelfile) carries the same prompt:

* a text: the template's own default text is replaced where the template writes it (so no copy of
  the old one is left in any artefact); a template without one, or whose default is not written as
  plain text, gets a small jinja preamble that puts it first in conversations without a system
  message (the template's own default then never applies);
* ``""``: no system prompt when none is given. The template's own default turn is removed from its
  source; a template whose default cannot be found there is refused (set a text instead);
* unset: the template as it is.

Each change is checked by rendering a one-turn conversation before the template is used.
"""

from __future__ import annotations

import json
from dataclasses import replace

from jinja2.exceptions import TemplateError

from tuneforge.data.templates import Template, resolve_template
from tuneforge.errors import ConfigError

_PROBE_USER = [{"role": "user", "content": "TFprobeUSER"}]
_PROBE_SYSTEM = "TFprobeSYSTEM"


def run_template(data_cfg, tokenizer) -> Template:
    """``data.template`` resolved against the tokenizer, with ``data.default_system`` applied."""
    return with_default_system(
        resolve_template(data_cfg.template, tokenizer), data_cfg.default_system, tokenizer
    )


def template_default_system(template: Template, tokenizer) -> str | None:
    """The system turn ``template`` writes for a conversation without one (its whole rendered text,
    header and end included), or None when it writes none."""
    user = _PROBE_USER[0]["content"]
    system = [{"role": "system", "content": _PROBE_SYSTEM}]
    try:
        after_system = template.render(tokenizer, system).split(_PROBE_SYSTEM)[1]
        with_system = template.render(tokenizer, [*system, *_PROBE_USER])
        bare = template.render(tokenizer, _PROBE_USER)
    except (TemplateError, IndexError):
        return None
    # the user turn's header: what follows the system turn's end, up to the user's text
    user_header = with_system.split(_PROBE_SYSTEM + after_system, 1)[-1].split(user, 1)[0]
    default = bare.split(user_header + user, 1)[0] if user_header + user in bare else ""
    return default or None


def with_default_system(template: Template, default_system: str | None, tokenizer) -> Template:
    """``template`` rendering ``default_system`` (see the module docstring) when a conversation has no
    system message."""
    if default_system is None:
        return template
    if not default_system:
        return _without_default(template, tokenizer)
    old = _default_text(template, tokenizer)
    if old:  # the template's own text is replaced where it is written, so no copy of it is left
        for written in _spellings(old):
            if written in template.jinja:
                changed = replace(template, jinja=template.jinja.replace(written, _literal(default_system)))
                if default_system in changed.render(tokenizer, _PROBE_USER) and old not in changed.jinja:
                    return changed
    preamble = (
        "{%- if messages and messages[0]['role'] != 'system' -%}"
        "{%- set messages = [{'role': 'system', 'content': "
        + json.dumps(default_system)
        + "}] + messages -%}"
        "{%- endif -%}"
    )
    changed = replace(template, jinja=preamble + template.jinja)
    if default_system not in changed.render(tokenizer, _PROBE_USER):
        raise ConfigError(
            f"data.default_system: chat template {template.name!r} does not render system messages, "
            "so it cannot carry a default system prompt; use a template that does (e.g. data.template=chatml)"
        )
    return changed


def _default_text(template: Template, tokenizer) -> str | None:
    """The text of the template's own default system prompt (without the turn's header and end)."""
    turn = template_default_system(template, tokenizer)
    if turn is None:
        return None
    try:
        before, after = template.render(tokenizer, [{"role": "system", "content": _PROBE_SYSTEM}]).split(
            _PROBE_SYSTEM
        )
    except (TemplateError, ValueError):
        return None
    if not (turn.startswith(before) and turn.endswith(after)) or len(turn) <= len(before) + len(after):
        return None
    return turn[len(before) : len(turn) - len(after)]


def _literal(text: str) -> str:
    """``text`` written to sit inside a jinja string literal of either quote."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("'", "\\'").replace('"', '\\"')


def _without_default(template: Template, tokenizer) -> Template:
    turn = template_default_system(template, tokenizer)
    if turn is None:
        return template  # it adds none: nothing to remove
    for written in _spellings(turn):
        for quote in ("'", '"'):
            literal = quote + written + quote
            if template.jinja.count(literal) == 1:
                changed = replace(template, jinja=template.jinja.replace(literal, quote * 2))
                if template_default_system(changed, tokenizer) is None:
                    return changed
    raise ConfigError(
        f'data.default_system: "" asks for no system prompt, but chat template {template.name!r} writes its '
        f"own ({turn.strip()!r}) in a way tuneforge cannot take out; set data.default_system to a text "
        "of your own instead"
    )


def _spellings(text: str) -> list[str]:
    """How ``text`` can be written inside a jinja string literal: as it is, or with escaped newlines."""
    escaped = text.replace("\\", "\\\\").replace("\n", "\\n")
    return [text] if escaped == text else [text, escaped]
