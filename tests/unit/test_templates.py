"""Chat templates: parity of every named template with the model's own reference template, and
the errors of resolving one.

The reference templates in tests/fixtures/templates are the `chat_template` strings of the real
models' tokenizer_config.json: llama3.jinja from meta-llama/Meta-Llama-3-8B-Instruct, qwen2_5.jinja
from Qwen/Qwen2.5-*-Instruct, chatml.jinja from teknium/OpenHermes-2.5-Mistral-7B; SmolLM2's own is
tests/fixtures/smollm2-tokenizer/chat_template.jinja. Adding a template = one module in
tuneforge/data/templates + one row in PARITY (or, with no upstream reference, a golden text test);
every module's TOOLS and DEFAULT_SYSTEM are checked against what it renders.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from tuneforge.data.conversation import Conversation, Message, ToolCall
from tuneforge.data.render import IGNORE_INDEX, RenderOptions, render_conversation, render_prompt
from tuneforge.data.templates import TEMPLATES, Template, _renders_tools, resolve_template
from tuneforge.errors import ConfigError

FIXTURES = Path(__file__).parents[1] / "fixtures"
REFERENCE = FIXTURES / "templates"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "description": "Local time", "parameters": {}}}

PLAIN = [
    Conversation([Message("user", "Hi"), Message("assistant", "Hello! How can I help?")]),
    Conversation(
        [
            Message("system", "You answer in one line."),
            Message("user", "What is 2+2?"),
            Message("assistant", "4"),
            Message("user", "And 3+3?"),
            Message("assistant", "  6, of course.  "),
        ]
    ),
    Conversation(
        [
            Message("user", "Name a colour."),
            Message("assistant", "Blue."),
            Message("user", "Another?"),
            Message("assistant", "Green.\n\nOr red."),
        ]
    ),
]
TOOLS = [
    Conversation(
        [
            Message("system", "You can look things up."),
            Message("user", "Weather in Paris?"),
            Message("assistant", "", tool_calls=[ToolCall("get_weather", '{"city": "Paris"}', id="c1")]),
            Message("tool", '{"temp": 21}', tool_call_id="c1", name="get_weather"),
            Message("assistant", "It is 21 degrees in Paris."),
        ],
        tools=[WEATHER, TIME],
    ),
    Conversation(
        [
            Message("user", "Weather and time in Rome?"),
            Message(
                "assistant",
                "Let me check.",
                tool_calls=[ToolCall("get_weather", '{"city": "Rome"}'), ToolCall("get_time", "{}")],
            ),
            Message("tool", '{"temp": 25}', name="get_weather"),
            Message("tool", '"14:05"', name="get_time"),
            Message("assistant", "25 degrees, and it is 14:05."),
        ],
        tools=[WEATHER, TIME],
    ),
]


def to_hf(conv: Conversation) -> list[dict]:
    """The test's own Message -> HF dict conversion (tool-call arguments as objects)."""
    out = []
    for m in conv.messages:
        d = {"role": m.role, "content": m.content}
        if m.tool_calls:
            d["tool_calls"] = [
                {"type": "function", "function": {"name": c.name, "arguments": json.loads(c.arguments)}}
                for c in m.tool_calls
            ]
        out.append(d)
    return out


@pytest.fixture(scope="module")
def qwen_tok(tokenizer):
    tok = copy.deepcopy(tokenizer)
    tok.add_tokens(["<tool_call>", "</tool_call>"])  # added but not special, as in Qwen2.5
    return tok


@pytest.fixture(scope="module")
def llama_tok(tokenizer):
    """SmolLM2 made to look like a Llama 3 tokenizer: its special tokens, and a bos it adds itself."""
    tok = copy.deepcopy(tokenizer)
    tok.add_special_tokens(
        {
            "bos_token": "<|begin_of_text|>",
            "additional_special_tokens": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
        }
    )
    tok.add_bos_token = True
    return tok


# name in data.template, tokenizer fixture, reference template file, conversations
PARITY = [
    ("auto", "tokenizer", FIXTURES / "smollm2-tokenizer" / "chat_template.jinja", PLAIN),
    ("chatml", "tokenizer", REFERENCE / "chatml.jinja", PLAIN),
    # without tools chatml_tools is chatml; with tools, see its golden test
    ("chatml_tools", "tokenizer", REFERENCE / "chatml.jinja", PLAIN),
    ("qwen", "qwen_tok", REFERENCE / "qwen2_5.jinja", PLAIN + TOOLS),
    ("llama3", "llama_tok", REFERENCE / "llama3.jinja", PLAIN),
]


@pytest.mark.parametrize(("name", "tok_fixture", "reference", "convs"), PARITY, ids=[p[0] for p in PARITY])
def test_parity_with_the_reference_template(request, name, tok_fixture, reference, convs):
    tok = request.getfixturevalue(tok_fixture)
    template = resolve_template(name, tok)
    ref = reference.read_text()
    for conv in convs:
        msgs, tools = to_hf(conv), conv.tools
        want_text = tok.apply_chat_template(msgs, tools=tools, chat_template=ref, tokenize=False)
        assert template.render(tok, msgs, tools) == want_text
        want_ids = tok.apply_chat_template(msgs, tools=tools, chat_template=ref, tokenize=True)["input_ids"]
        rendered = render_conversation(conv, tok, template, RenderOptions(max_length=4096))
        assert rendered.input_ids == want_ids
        # every assistant turn is trained and ends with the stop token
        n_answers = sum(m.role == "assistant" for m in conv.messages)
        stop_id = tok.convert_tokens_to_ids(template.stop_tokens[0])
        trained = [
            i for i, lab in zip(rendered.input_ids, rendered.labels, strict=True) if lab != IGNORE_INDEX
        ]
        assert trained.count(stop_id) == n_answers and trained[-1] == stop_id

        prompt = conv.messages[: max(i for i, m in enumerate(conv.messages) if m.role != "assistant") + 1]
        want_prompt = tok.apply_chat_template(
            to_hf(Conversation(prompt)), tools=tools, chat_template=ref, add_generation_prompt=True
        )["input_ids"]
        assert render_prompt(prompt, tok, template, tools) == want_prompt


def test_every_named_template_has_a_parity_row_or_golden_test():
    assert set(TEMPLATES.names()) == {p[0] for p in PARITY if p[0] != "auto"} | {"default"}
    for name in TEMPLATES.names():
        module = TEMPLATES.get(name)
        assert isinstance(module.JINJA, str) and isinstance(module.DESCRIPTION, str)
        assert isinstance(module.STOP_TOKENS, tuple) and isinstance(module.REQUIRED_TOKENS, tuple)
        assert isinstance(vars(module).get("TOOLS"), bool), f"{name} must say whether it renders tools"


@pytest.mark.parametrize("name", TEMPLATES.names())
def test_tools_and_default_system_say_what_the_template_renders(name, tokenizer):
    """TOOLS is what the render-time error trusts when it suggests templates for tool data, and
    DEFAULT_SYSTEM keeps a template with another model's persona out of those suggestions."""
    module = TEMPLATES.get(name)
    template = Template(name, module.JINJA, module.STOP_TOKENS or (tokenizer.eos_token,))
    assert _renders_tools(template, tokenizer) is module.TOOLS
    system = TEMPLATES.hook(module, "DEFAULT_SYSTEM")
    alone = template.render(tokenizer, [{"role": "user", "content": "Hi"}])
    if system:
        assert system in alone
    else:  # no words but the user's: only markup (<|...|> tokens, the role's name) around "Hi"
        words = re.sub(r"<\|\w+\|>|\buser\b|\bHi\b", "", alone, flags=re.IGNORECASE)
        assert not any(c.isalpha() for c in words), words


def test_chatml_tools_golden_text(tokenizer):
    """Hermes-2-Pro's tool format in ChatML: the user's system message first in the system turn,
    then the tools; calls after the answer's text; one tool turn per result; no default system
    prompt."""
    template = resolve_template("chatml_tools", tokenizer)
    weather, time_ = json.dumps(WEATHER), json.dumps(TIME)
    tools = (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
        f"{weather}\n{time_}\n</tools>\n\nFor each function call, return a json object with function name "
        "and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
    )
    assert template.render(tokenizer, to_hf(TOOLS[0]), TOOLS[0].tools) == (
        "<|im_start|>system\nYou can look things up.\n\n"
        + tools
        + "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
        "</tool_call><|im_end|>\n"
        '<|im_start|>tool\n<tool_response>\n{"temp": 21}\n</tool_response><|im_end|>\n'
        "<|im_start|>assistant\nIt is 21 degrees in Paris.<|im_end|>\n"
    )
    assert template.render(tokenizer, to_hf(TOOLS[1]), TOOLS[1].tools) == (
        "<|im_start|>system\n" + tools + "<|im_start|>user\nWeather and time in Rome?<|im_end|>\n"
        "<|im_start|>assistant\nLet me check.\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call><|im_end|>\n'
        '<|im_start|>tool\n<tool_response>\n{"temp": 25}\n</tool_response><|im_end|>\n'
        '<|im_start|>tool\n<tool_response>\n"14:05"\n</tool_response><|im_end|>\n'
        "<|im_start|>assistant\n25 degrees, and it is 14:05.<|im_end|>\n"
    )


def test_chatml_tools_is_prefix_stable_and_trains_only_the_answers(tokenizer):
    template = resolve_template("chatml_tools", tokenizer)
    for conv in TOOLS:
        msgs = to_hf(conv)
        whole = template.render(tokenizer, msgs, conv.tools)
        for i in range(1, len(msgs)):  # each turn renders the same whatever follows
            assert whole.startswith(template.render(tokenizer, msgs[:i], conv.tools))
            if msgs[i]["role"] == "assistant":
                assert whole.startswith(template.render(tokenizer, msgs[:i], conv.tools, True))
        for opts in (RenderOptions(4096), RenderOptions(4096, train_on_prompt=True)):
            out = render_conversation(conv, tokenizer, template, opts)
            trained = tokenizer.decode(
                [t for t, lab in zip(out.input_ids, out.labels, strict=True) if lab != IGNORE_INDEX]
            )
            if opts.train_on_prompt:
                assert out.labels == out.input_ids
                continue
            assert "<tools>" not in trained and "<tool_response>" not in trained and "Weather" not in trained
            calls = [c.name for m in conv.messages for c in m.tool_calls]
            assert trained.count("<tool_call>") == len(calls) and all(
                f'"name": "{c}"' in trained for c in calls
            )
            assert trained.endswith(conv.messages[-1].content + "<|im_end|>")


def test_default_template_golden_text(tokenizer):
    default = resolve_template("default", tokenizer)
    assert default.stop_tokens == ("<|im_end|>",)  # the tokenizer's eos
    msgs = to_hf(PLAIN[1])
    assert default.render(tokenizer, msgs) == (
        "You answer in one line.\n\nUser: What is 2+2?\nAssistant: 4<|im_end|>\n"
        "User: And 3+3?\nAssistant:   6, of course.  <|im_end|>\n"
    )
    assert default.render(tokenizer, msgs[:2], add_generation_prompt=True) == (
        "You answer in one line.\n\nUser: What is 2+2?\nAssistant:"
    )


def test_auto_is_the_tokenizers_own_template(tokenizer):
    template = resolve_template("auto", tokenizer)
    assert template.name == "tokenizer"
    assert template.jinja == tokenizer.chat_template
    assert template.stop_tokens == ("<|im_end|>",)


def test_auto_finds_the_end_of_turn_token_when_it_is_not_eos(llama_tok):
    tok = copy.deepcopy(llama_tok)
    tok.chat_template = (REFERENCE / "llama3.jinja").read_text()
    assert resolve_template("auto", tok).stop_tokens == ("<|eot_id|>", "<|im_end|>")


def test_auto_without_a_chat_template(tokenizer):
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = None
    with pytest.raises(ConfigError, match="tokenizer has no chat template") as e:
        resolve_template("auto", tok)
    assert "chatml, chatml_tools, default, llama3, qwen" in str(e.value)


@pytest.mark.parametrize(("name", "token"), [("llama3", "<|eot_id|>")])
def test_named_template_needs_its_tokens(tokenizer, name, token):
    with pytest.raises(ConfigError) as e:
        resolve_template(name, tokenizer)
    assert str(e.value) == (
        f"template {name!r} needs the token {token!r}, which this tokenizer lacks; "
        "use data.template=chatml (adds no tokens) or a tokenizer that has it"
    )


def test_unknown_template_suggests_the_close_name(tokenizer):
    with pytest.raises(ConfigError, match=r"unknown template 'chatm'.*did you mean 'chatml'"):
        resolve_template("chatm", tokenizer)


def test_template_that_is_not_prefix_stable_fails_at_resolve(tokenizer):
    tok = copy.deepcopy(tokenizer)
    # like templates that drop past reasoning: earlier turns change once a later one is added
    tok.chat_template = (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] }}"
        "{% if loop.last %}{{ ' (latest)' }}{% endif %}{{ '<|im_end|>\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )
    with pytest.raises(ConfigError, match="'tokenizer' is not prefix-stable"):
        resolve_template("auto", tok)


def test_qwen_renders_tool_calls_with_a_tokenizer_lacking_tool_tokens(tokenizer):
    """SmolLM2 has ChatML delimiters but no <tool_call> token: qwen still renders and trains tools."""
    from tuneforge.data.conversation import Conversation, Message, ToolCall
    from tuneforge.data.render import RenderOptions, render_conversation

    template = resolve_template("qwen", tokenizer)
    conv = Conversation(
        [
            Message("user", "Weather in Paris?"),
            Message("assistant", "", tool_calls=[ToolCall("get_weather", '{"city": "Paris"}')]),
            Message("tool", "18C, sunny", name="get_weather"),
            Message("assistant", "It is 18C and sunny."),
        ],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    )
    out = render_conversation(conv, tokenizer, template, RenderOptions(max_length=512))
    trained = tokenizer.decode([t for t, lab in zip(out.input_ids, out.labels, strict=True) if lab != -100])
    assert (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>'
        in trained
    )
    assert trained.endswith("It is 18C and sunny.<|im_end|>")
    assert "18C, sunny" not in trained.replace("It is 18C and sunny.", "")
