"""Chat templates: step 3 of a run, after the tokenizer is loaded and before any data is rendered.

``data.template: auto`` uses the tokenizer's own chat template (resolved name ``tokenizer``); a named
template is one module in this package (file name = name) for models that lack one or to override
it; what it defines is `TemplateModule` below. The resolved ``Template`` is what the renderer masks
with and what every artifact saves for chat and serving, so training and serving use the same text.
"""

from __future__ import annotations

from dataclasses import dataclass

from tuneforge.errors import ConfigError
from tuneforge.registry import Interface, Registry, did_you_mean


class TemplateModule(Interface):
    """A module of `tuneforge.data.templates`: one named chat template."""

    DESCRIPTION: str  # one line for `tuneforge ls templates`
    JINJA: str  # a Hugging Face chat template
    STOP_TOKENS: tuple[str, ...]  # end-of-turn tokens; empty means the tokenizer's eos
    REQUIRED_TOKENS: tuple[str, ...]  # tokens that must be single tokens of the vocabulary
    # renders tool calls, tool results and tool schemas (test_templates.py checks it); without it a
    # third-party template loads as before and is just never suggested for tool data
    TOOLS: bool = False
    # the system prompt the template writes when a conversation has none: another model's persona,
    # so it is suggested for tool data only to tokenizers whose own template writes it too
    DEFAULT_SYSTEM: str | None = None


TEMPLATES = Registry("templates", "tuneforge.data.templates", interface=TemplateModule)

# A conversation to probe a template with at resolve time: every chat template accepts it.
_PROBE = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "tuneforge-probe-answer"}]


@dataclass(frozen=True)
class Template:
    name: str  # 'tokenizer' (the tokenizer's own, from data.template=auto) or a named one
    jinja: str  # a HF chat template string; saved with every artifact and used for chat/serving
    stop_tokens: tuple[str, ...]  # end-of-turn token(s), e.g. ('<|im_end|>',)

    def render(
        self,
        tokenizer,
        messages: list[dict],
        tools: list[dict] | None = None,
        add_generation_prompt: bool = False,
    ) -> str:
        """The template's text for ``messages``, exactly as ``tokenizer.apply_chat_template(...,
        tokenize=False)`` renders it (same function, same variables); raises jinja2's TemplateError."""
        from transformers.utils.chat_template_utils import render_jinja_template

        compiled = _compiled(self.jinja) if not tools and _plain_text_messages(messages) else None
        if compiled is not None:
            # what render_jinja_template ends in; the steps before it (copying the messages into
            # plain JSON types, aliasing reasoning fields, reading tool schemas) change nothing for
            # messages of plain strings without reasoning, and are slow
            return compiled.render(
                messages=messages,
                tools=None,
                documents=None,
                add_generation_prompt=add_generation_prompt,
                **tokenizer.special_tokens_map,
            )

        # What apply_chat_template calls; called directly to skip that method's per-call work, since
        # the renderer renders every prefix of every sample.
        rendered, _ = render_jinja_template(
            conversations=[messages],
            tools=tools or None,
            chat_template=self.jinja,
            add_generation_prompt=add_generation_prompt,
            **tokenizer.special_tokens_map,
        )
        return rendered[0]

    def generation_prompt(self, tokenizer) -> str:
        """The text the template appends for ``add_generation_prompt=True`` (e.g. the assistant header)."""
        head = _PROBE[:1]
        bare, prompted = (
            self.render(tokenizer, head),
            self.render(tokenizer, head, add_generation_prompt=True),
        )
        if not prompted.startswith(bare):
            raise not_prefix_stable(self, "adding the generation prompt changes the text before it")
        return prompted[len(bare) :]


_REASONING_KEYS = frozenset({"reasoning_content", "thinking", "reasoning"})


def _plain_text_messages(messages: list[dict]) -> bool:
    return all(
        type(m) is dict and all(type(v) is str for v in m.values()) and not _REASONING_KEYS & m.keys()
        for m in messages
    )


def _compiled(jinja: str):
    """transformers' compiled (cached, sandboxed) template, or None where that helper has moved."""
    try:
        from transformers.utils.chat_template_utils import _compile_jinja_template
    except ImportError:
        return None
    return _compile_jinja_template(jinja)


def not_prefix_stable(template: Template, detail: str) -> ConfigError:
    return ConfigError(
        f"chat template {template.name!r} is not prefix-stable ({detail}), so assistant turns "
        "cannot be located for the loss mask; set "
        f"data.template to a named one ({', '.join(TEMPLATES.names())}) or use a template that renders "
        "each turn the same whatever follows"
    )


def resolve_template(name: str, tokenizer) -> Template:
    """Resolve ``data.template`` against the loaded tokenizer, checking that they fit together."""
    if name == "auto":
        template = _tokenizer_template(tokenizer)
    else:
        choices = ["auto", *TEMPLATES.names()]
        if name not in choices:
            raise ConfigError(f"unknown template {name!r} in data.template: {did_you_mean(name, choices)}")
        module = TEMPLATES.get(name)
        for token in module.REQUIRED_TOKENS:
            if not has_token(tokenizer, token):
                raise ConfigError(
                    f"template {name!r} needs the token {token!r}, which this tokenizer lacks; use "
                    f"data.template={_fallback_for(tokenizer, name)} (adds no tokens) or a tokenizer that has it"
                )
        stop = tuple(module.STOP_TOKENS) or ((tokenizer.eos_token,) if tokenizer.eos_token else ())
        if not stop:
            raise ConfigError(
                f"template {name!r} ends assistant turns with the tokenizer's eos token, but this tokenizer "
                "has none; use a tokenizer with an eos token or another data.template"
            )
        template = Template(name=name, jinja=module.JINJA, stop_tokens=stop)
    _check_prefix_stable(template, tokenizer)
    return template


def has_token(tokenizer, token: str) -> bool:
    """True when ``token`` is in the vocabulary and the tokenizer turns its text into that one token."""
    tid = tokenizer.convert_tokens_to_ids(token)
    if tid is None or (tid == tokenizer.unk_token_id and token != tokenizer.unk_token):
        return False
    return tokenizer(token, add_special_tokens=False)["input_ids"] == [tid]


def working_templates(tokenizer, refused: str, *, tools: bool) -> list[str]:
    """The ``data.template`` values other than ``refused`` (a `Template` name) that render this
    tokenizer's conversations with nothing lost, for an error to suggest: the named templates whose
    tokens it has (those with ``TOOLS`` where ``tools``; reasoning every named one keeps, the
    renderer folding it into <think> tags), less those that write another model's default system
    prompt; then ``auto`` where the tokenizer's own template renders tools and is not the one refused."""
    own = _own_jinja(tokenizer)
    names = []
    for name in TEMPLATES.names():
        module = TEMPLATES.get(name)
        system = TEMPLATES.hook(module, "DEFAULT_SYSTEM")
        if (
            name != refused
            and (TEMPLATES.hook(module, "TOOLS") or not tools)
            and all(has_token(tokenizer, t) for t in module.REQUIRED_TOKENS)
            and (not system or system in own)  # Qwen's prompt only for a tokenizer whose template has it
        ):
            names.append(name)
    if tools and refused != "tokenizer" and own and _renders_tools(Template("tokenizer", own, ()), tokenizer):
        names.append("auto")
    return names


def _own_jinja(tokenizer) -> str:
    jinja = getattr(tokenizer, "chat_template", None)
    if isinstance(jinja, dict):  # a tokenizer can carry several named templates
        jinja = jinja.get("default")
    return jinja or ""


_TOOL_PROBE = [
    {"role": "user", "content": "Hi"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"type": "function", "function": {"name": "tuneforge_probe_call", "arguments": {}}}],
    },
    {"role": "tool", "content": "ok", "name": "tuneforge_probe_call"},
    {"role": "assistant", "content": "done"},
]
_TOOL_PROBE_SCHEMA = {"type": "function", "function": {"name": "tuneforge_probe_schema", "parameters": {}}}


def _renders_tools(template: Template, tokenizer) -> bool:
    """Whether ``template`` writes a tool call and a tool schema of a probe conversation."""
    from jinja2.exceptions import TemplateError

    try:
        text = template.render(tokenizer, _TOOL_PROBE, [_TOOL_PROBE_SCHEMA])
    except (TemplateError, TypeError, ValueError):  # a template that refuses tools, or the probe's shape
        return False
    return "tuneforge_probe_call" in text and "tuneforge_probe_schema" in text


def _fallback_for(tokenizer, failed: str) -> str:
    for candidate in ("chatml", *TEMPLATES.names()):
        if candidate != failed and all(
            has_token(tokenizer, t) for t in TEMPLATES.get(candidate).REQUIRED_TOKENS
        ):
            return candidate
    return "default"


def _tokenizer_template(tokenizer) -> Template:
    jinja = _own_jinja(tokenizer)
    if not jinja:
        raise ConfigError(
            "data.template is 'auto' but the tokenizer has no chat template (a base model?); set "
            f"data.template to one of {', '.join(TEMPLATES.names())} ('default' suits a base model: "
            "'User: ... Assistant: ...'; `tuneforge ls templates` describes each)"
        )
    template = Template(name="tokenizer", jinja=jinja, stop_tokens=())
    return Template(name="tokenizer", jinja=jinja, stop_tokens=_detect_stop_tokens(template, tokenizer))


def _detect_stop_tokens(template: Template, tokenizer) -> tuple[str, ...]:
    """The added token the template writes right after an assistant answer, plus eos if different."""
    from jinja2.exceptions import TemplateError

    eos = (tokenizer.eos_token,) if tokenizer.eos_token else ()
    try:
        text = template.render(tokenizer, _PROBE[:2])
    except TemplateError:
        return eos
    answer = _PROBE[1]["content"]
    rest = text[text.find(answer) + len(answer) :] if answer in text else ""
    found = [(rest.find(t), t) for t in tokenizer.added_tokens_encoder if t.strip() and t in rest]
    if not found:
        return eos
    first = min(found, key=lambda p: (p[0], -len(p[1])))[1]
    return (first, *(t for t in eos if t != first))


def _check_prefix_stable(template: Template, tokenizer) -> None:
    """Fail at resolve time, before data is loaded, when a template cannot mark a single answer.
    Multi-turn stability is checked on every sample: some templates (Qwen3's) only rewrite
    earlier turns, so single-turn data works with them."""
    from jinja2.exceptions import TemplateError

    try:
        user, both = template.render(tokenizer, _PROBE[:1]), template.render(tokenizer, _PROBE[:2])
        prompt = template.render(tokenizer, _PROBE[:1], add_generation_prompt=True)
    except TemplateError:
        return  # the template rejects the probe; the renderer checks every sample anyway
    if not both.startswith(user):
        raise not_prefix_stable(template, "a user turn renders differently once an answer follows")
    if not both.startswith(prompt):
        raise not_prefix_stable(template, "its generation prompt differs from how it renders assistant turns")
