"""The Ollama Modelfile TEMPLATE derived from a jinja chat template renders every conversation as
the jinja template does (checked with a Go-template subset renderer), or is refused."""

from __future__ import annotations

import pytest

from tests.helpers.gotemplate import render_go
from tuneforge.data.templates import TEMPLATES
from tuneforge.errors import ConfigError
from tuneforge.export.ollama import go_template, measure

CONVERSATIONS = [
    [{"role": "user", "content": "Hi"}],
    [
        {"role": "system", "content": "You answer in French."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Bonjour !\nComment puis-je aider ?"},
        {"role": "user", "content": "Count to 3"},
    ],
    [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ],
]


@pytest.mark.parametrize("name", ["tokenizer", "chatml", "qwen", "default"])
def test_go_template_matches_jinja(name, tokenizer):
    jinja = tokenizer.chat_template if name == "tokenizer" else TEMPLATES.get(name).JINJA
    shape = measure(jinja, tokenizer)
    template = go_template(shape)
    for conv in CONVERSATIONS:
        expected = tokenizer.apply_chat_template(
            conv, chat_template=jinja, tokenize=False, add_generation_prompt=True
        )
        assert render_go(template, conv, shape.default_system) == expected


def test_default_system_prompts_become_the_modelfile_system(tokenizer):
    assert measure(tokenizer.chat_template, tokenizer).default_system.startswith(
        "You are a helpful AI assistant"
    )
    assert measure(TEMPLATES.get("chatml").JINJA, tokenizer).default_system is None


def test_a_template_that_is_not_per_message_is_refused(tokenizer):
    numbered = "{% for m in messages %}[{{ loop.index }}] {{ m['content'] }}\n{% endfor %}"
    with pytest.raises(ConfigError, match="cannot be written as an Ollama TEMPLATE"):
        measure(numbered, tokenizer)
