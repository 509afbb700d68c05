"""Golden tests for the renderer on the real SmolLM2 tokenizer: exact ids and labels.

Expected ids come from tokenizing hand-written text, piece by piece, with each piece marked
trained or masked; `expect` also checks that the pieces tokenize like the joined text, so the
expectation itself cannot drift from what one tokenization of the whole sample gives.
"""

from __future__ import annotations

import copy

import pytest

from tests.helpers.labels import expect
from tuneforge.data.conversation import Conversation, Document, Message, ToolCall
from tuneforge.data.render import (
    IGNORE_INDEX,
    DropSample,
    RenderOptions,
    render_conversation,
    render_document,
    render_prompt,
)
from tuneforge.data.templates import Template, resolve_template
from tuneforge.errors import ConfigError

SMOL_SYSTEM = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
)
OPTS = RenderOptions(max_length=4096)
TOOL_SCHEMA = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TOOL_SCHEMA_JSON = (
    '{"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city", '
    '"parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}'
)


def render(conv, tok, template, opts=OPTS):
    r = render_conversation(conv, tok, template, opts)
    return r.input_ids, r.labels


def trained_runs(tok, ids, labels) -> list[str]:
    """Decoded runs of consecutive trained tokens."""
    runs, run = [], []
    for i, lab in zip(ids, labels, strict=True):
        if lab != IGNORE_INDEX:
            assert lab == i
            run.append(i)
        elif run:
            runs.append(tok.decode(run))
            run = []
    if run:
        runs.append(tok.decode(run))
    return runs


@pytest.fixture(scope="module")
def own(tokenizer):
    return resolve_template("auto", tokenizer)


@pytest.fixture(scope="module")
def qwen_tok(tokenizer):
    tok = copy.deepcopy(tokenizer)
    tok.add_tokens(["<tool_call>", "</tool_call>"])  # added but not special, as in Qwen2.5
    return tok


def multi_turn() -> Conversation:
    return Conversation(
        [
            Message("user", "Hi"),
            Message("assistant", "Hello! How can I help?"),
            Message("user", "What is 2+2?"),
            Message("assistant", "4"),
        ]
    )


def test_single_turn(tokenizer, own):
    conv = Conversation([Message("user", "Hi"), Message("assistant", "Hello! How can I help?")])
    assert render(conv, tokenizer, own) == expect(
        tokenizer,
        (SMOL_SYSTEM + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", False),
        ("Hello! How can I help?<|im_end|>", True),
        ("\n", False),
    )


def test_multi_turn_trains_every_assistant_turn(tokenizer, own):
    assert render(multi_turn(), tokenizer, own) == expect(
        tokenizer,
        (SMOL_SYSTEM + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", False),
        ("Hello! How can I help?<|im_end|>", True),
        ("\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n", False),
        ("4<|im_end|>", True),
        ("\n", False),
    )


def test_trained_tokens_decode_to_each_answer_and_its_stop_token(tokenizer, own):
    conv = multi_turn()
    conv.messages.insert(0, Message("system", "Answer briefly, in English."))
    ids, labels = render(conv, tokenizer, own)
    answers = [m.content for m in conv.messages if m.role == "assistant"]
    assert trained_runs(tokenizer, ids, labels) == [a + "<|im_end|>" for a in answers]


def test_system_prompt_replaces_the_default_one(tokenizer, own):
    conv = Conversation([Message("system", "Be brief."), Message("user", "Hi"), Message("assistant", "Hey.")])
    assert render(conv, tokenizer, own) == expect(
        tokenizer,
        (
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
            False,
        ),
        ("Hey.<|im_end|>", True),
        ("\n", False),
    )


def test_assistant_turn_opening_the_conversation(tokenizer, own):
    conv = Conversation([Message("assistant", "Welcome!"), Message("user", "Hi"), Message("assistant", "Yo")])
    assert render(conv, tokenizer, own) == expect(
        tokenizer,
        (SMOL_SYSTEM + "<|im_start|>assistant\n", False),
        ("Welcome!<|im_end|>", True),
        ("\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", False),
        ("Yo<|im_end|>", True),
        ("\n", False),
    )


def test_tool_call_and_tool_result_with_tools_schema(qwen_tok):
    qwen = resolve_template("qwen", qwen_tok)
    conv = Conversation(
        [
            Message("user", "Weather in Paris?"),
            Message("assistant", "", tool_calls=[ToolCall("get_weather", '{"city":"Paris"}', id="c1")]),
            Message("tool", '{"temp": 21}', tool_call_id="c1", name="get_weather"),
            Message("assistant", "It is 21 degrees."),
        ],
        tools=[TOOL_SCHEMA],
    )
    system = (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n\n"
        "You may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
        + TOOL_SCHEMA_JSON
        + "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
        "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
    )
    ids, labels = render(conv, qwen_tok, qwen)
    assert (ids, labels) == expect(
        qwen_tok,
        (system + "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n", False),
        (
            '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>',
            True,
        ),
        ('\n<|im_start|>user\n<tool_response>\n{"temp": 21}\n</tool_response><|im_end|>\n', False),
        ("<|im_start|>assistant\n", False),
        ("It is 21 degrees.<|im_end|>", True),
        ("\n", False),
    )
    assert qwen_tok.convert_tokens_to_ids("<tool_call>") in ids


def test_consecutive_tool_results_train_on_prompt_and_truncation(qwen_tok):
    """Qwen2.5 closes a run of tool results only after the last one, so the end of the first is
    not a turn boundary; that must not break train_on_prompt or truncation."""
    qwen = resolve_template("qwen", qwen_tok)
    conv = Conversation(
        [
            Message("user", "Weather and time in Rome?"),
            Message("assistant", "Checking.", tool_calls=[ToolCall("get_weather", '{"city": "Rome"}')]),
            Message("tool", '{"temp": 25}', name="get_weather"),
            Message("tool", '"14:05"', name="get_time"),
            Message("assistant", "25 degrees at 14:05."),
        ],
        tools=[TOOL_SCHEMA],
    )
    ids, labels = render(conv, qwen_tok, qwen, RenderOptions(4096, train_on_prompt=True))
    assert labels == ids
    full_ids, _ = render(conv, qwen_tok, qwen)
    # 2 short: the last answer's stop token does not fit (1 short keeps it, less the newline after it)
    ids, labels = render(conv, qwen_tok, qwen, RenderOptions(len(full_ids) - 2))
    assert ids == full_ids[: len(ids)]
    assert qwen_tok.decode(ids).endswith("</tool_call><|im_end|>\n")
    assert trained_runs(qwen_tok, ids, labels) == [
        'Checking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call><|im_end|>'
    ]


def test_template_that_drops_tool_calls_or_schemas_is_refused(tokenizer):
    chatml = resolve_template("chatml", tokenizer)
    call = Conversation(
        [Message("user", "Weather?"), Message("assistant", "", tool_calls=[ToolCall("get_weather", "{}")])]
    )
    with pytest.raises(ConfigError, match="'chatml' does not render tool calls") as e:
        render_conversation(call, tokenizer, chatml, OPTS)
    # only the choices that work here: SmolLM2's own template renders no tools, qwen adds Qwen's
    # default system prompt to another model's data
    assert str(e.value).endswith("; use a template that renders them: data.template=chatml_tools")
    schema_only = Conversation([Message("user", "Hi"), Message("assistant", "Hello")], tools=[TOOL_SCHEMA])
    with pytest.raises(ConfigError, match="does not render tool schemas") as e:
        render_conversation(schema_only, tokenizer, chatml, OPTS)
    assert str(e.value).endswith("; use a template that renders them: data.template=chatml_tools")


# a glaive_toolcall_en_demo row (LLaMA-Factory's demo data) as the sharegpt converter reads it
GLAIVE = Conversation(
    [
        Message("user", "Hi, can you tell me the current stock price of Apple?"),
        Message("assistant", "", tool_calls=[ToolCall("get_stock_price", '{"symbol": "AAPL"}')]),
        Message("tool", '{"price": 150.75}', name="get_stock_price"),
        Message("assistant", "The current stock price of Apple (AAPL) is $150.75."),
    ],
    tools=[
        {
            "type": "function",
            "function": {
                "name": "get_stock_price",
                "description": "Get the current stock price",
                "parameters": {"type": "object", "properties": {"symbol": {"type": "string"}}},
            },
        }
    ],
)


def test_tool_data_under_the_tokenizers_own_template_suggests_chatml_tools(tokenizer, own):
    """SmolLM2's own template is ChatML without tools: the error must not send the user back to
    auto (the template just refused) nor to qwen (Qwen's default system prompt)."""
    with pytest.raises(ConfigError) as e:
        render_conversation(GLAIVE, tokenizer, own, OPTS)
    msg = str(e.value)
    assert msg.startswith(
        "chat template 'tokenizer' does not render tool calls (message 1 calls 'get_stock_price')"
    )
    assert msg.endswith("use a template that renders them: data.template=chatml_tools")
    assert "auto" not in msg and "qwen" not in msg


def test_chatml_tools_trains_the_tool_call_and_masks_schemas_and_results(tokenizer):
    ids, labels = render(GLAIVE, tokenizer, resolve_template("chatml_tools", tokenizer))
    schema = (
        '{"type": "function", "function": {"name": "get_stock_price", "description": "Get the current stock '
        'price", "parameters": {"type": "object", "properties": {"symbol": {"type": "string"}}}}}'
    )
    system = (
        "<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
        + schema
        + "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
        "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
    )
    assert (ids, labels) == expect(
        tokenizer,
        (
            system + "<|im_start|>user\nHi, can you tell me the current stock price of Apple?<|im_end|>\n",
            False,
        ),
        ("<|im_start|>assistant\n", False),
        (
            '<tool_call>\n{"name": "get_stock_price", "arguments": {"symbol": "AAPL"}}\n</tool_call><|im_end|>',
            True,
        ),
        ('\n<|im_start|>tool\n<tool_response>\n{"price": 150.75}\n</tool_response><|im_end|>\n', False),
        ("<|im_start|>assistant\n", False),
        ("The current stock price of Apple (AAPL) is $150.75.<|im_end|>", True),
        ("\n", False),
    )


def test_tool_error_names_auto_and_qwen_only_where_they_work(tokenizer):
    """With a Qwen2.5 tokenizer (its own template renders tools and has Qwen's system prompt),
    data.template=chatml refused for tool data points at every template that works."""
    from tests.unit.test_templates import REFERENCE

    tok = copy.deepcopy(tokenizer)
    tok.chat_template = (REFERENCE / "qwen2_5.jinja").read_text()
    with pytest.raises(ConfigError) as e:
        render_conversation(GLAIVE, tok, resolve_template("chatml", tok), OPTS)
    assert str(e.value).endswith(
        "use a template that renders them: data.template=chatml_tools or data.template=qwen or "
        "data.template=auto (the tokenizer's own)"
    )


def test_tool_error_without_a_fitting_template_says_to_write_one(tokenizer, own, monkeypatch):
    import tuneforge.data.template_messages as render_module

    monkeypatch.setattr(render_module, "working_templates", lambda tok, refused, tools: [])
    with pytest.raises(ConfigError) as e:
        render_conversation(GLAIVE, tokenizer, own, OPTS)
    assert str(e.value).endswith(
        "no named template renders them with this tokenizer's tokens; write a template for this model "
        "(docs/templates.md, 'Adding a template')"
    )


THINK = Template(
    name="think-chatml",
    jinja=(
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
        "{% if message.reasoning_content %}{{ '<think>\\n' + message.reasoning_content + '\\n</think>\\n' }}{% endif %}"
        "{{ message['content'] + '<|im_end|>\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    ),
    stop_tokens=("<|im_end|>",),
)


def test_reasoning_is_trained_as_the_template_renders_it(tokenizer):
    conv = Conversation(
        [Message("user", "2+2?"), Message("assistant", "4", reasoning="Two plus two is four.")]
    )
    assert render(conv, tokenizer, THINK) == expect(
        tokenizer,
        ("<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n", False),
        ("<think>\nTwo plus two is four.\n</think>\n4<|im_end|>", True),
        ("\n", False),
    )


def test_reasoning_is_folded_into_think_tags_for_templates_without_a_place_for_it(tokenizer):
    conv = Conversation(
        [Message("user", "2+2?"), Message("assistant", "4", reasoning="Two plus two is four.")]
    )
    assert render(conv, tokenizer, resolve_template("chatml", tokenizer)) == expect(
        tokenizer,
        ("<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n", False),
        ("<think>\nTwo plus two is four.\n</think>\n\n4<|im_end|>", True),
        ("\n", False),
    )


def test_train_on_prompt_trains_every_token(tokenizer, own):
    ids, labels = render(multi_turn(), tokenizer, own, RenderOptions(4096, train_on_prompt=True))
    assert labels == ids
    assert (
        ids
        == expect(tokenizer, (SMOL_SYSTEM, True))[0]
        + tokenizer(
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello! How can I help?<|im_end|>\n"
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n",
            add_special_tokens=False,
        )["input_ids"]
    )


def test_mask_history_trains_only_the_last_answer(tokenizer, own):
    assert render(multi_turn(), tokenizer, own, RenderOptions(4096, mask_history=True)) == expect(
        tokenizer,
        (
            SMOL_SYSTEM
            + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello! How can I help?<|im_end|>\n",
            False,
        ),
        ("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n", False),
        ("4<|im_end|>", True),
        ("\n", False),
    )


def test_message_train_overrides(tokenizer, own):
    conv = multi_turn()
    conv.messages[1].train = False  # a bad answer kept as context
    conv.messages[2].train = True  # a user turn trained whole
    assert render(conv, tokenizer, own) == expect(
        tokenizer,
        (
            SMOL_SYSTEM
            + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello! How can I help?<|im_end|>\n",
            False,
        ),
        ("<|im_start|>user\nWhat is 2+2?<|im_end|>\n", True),
        ("<|im_start|>assistant\n", False),
        ("4<|im_end|>", True),
        ("\n", False),
    )
    kept = multi_turn()
    kept.messages[1].train = True  # kept even under mask_history
    ids, labels = render(kept, tokenizer, own, RenderOptions(4096, mask_history=True))
    assert trained_runs(tokenizer, ids, labels) == ["Hello! How can I help?<|im_end|>", "4<|im_end|>"]
    kept.messages[3].train = False
    assert render(kept, tokenizer, own, RenderOptions(4096, train_on_prompt=True)) == expect(
        tokenizer,
        (
            SMOL_SYSTEM
            + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello! How can I help?<|im_end|>\n",
            True,
        ),
        ("<|im_start|>user\nWhat is 2+2?<|im_end|>\n", True),
        ("<|im_start|>assistant\n4<|im_end|>\n", False),
    )


def test_nothing_to_train_is_dropped(tokenizer, own):
    conv = multi_turn()
    for m in conv.messages:
        m.train = False if m.role == "assistant" else None
    with pytest.raises(DropSample) as e:
        render_conversation(conv, tokenizer, own, OPTS)
    assert e.value.reason == "no message to train on"


def test_truncation_keeps_a_sample_that_fits(tokenizer, own):
    full = render(multi_turn(), tokenizer, own)
    assert render(multi_turn(), tokenizer, own, RenderOptions(len(full[0]))) == full


def test_truncation_keeps_whole_turns_that_fit(tokenizer, own):
    first_turn = expect(
        tokenizer,
        (SMOL_SYSTEM + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", False),
        ("Hello! How can I help?<|im_end|>", True),
        ("\n", False),
    )
    full_len = len(render(multi_turn(), tokenizer, own)[0])
    # the second user turn would fit too, but nothing after it is trained, so it is left out (2 short:
    # the last stop token does not fit; 1 short keeps it, less the newline: test_prompt_truncation.py)
    assert render(multi_turn(), tokenizer, own, RenderOptions(full_len - 2)) == first_turn
    assert render(multi_turn(), tokenizer, own, RenderOptions(len(first_turn[0]))) == first_turn


def test_truncation_cuts_inside_the_first_answer(tokenizer, own):
    prompt = SMOL_SYSTEM + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    ids, labels = render(multi_turn(), tokenizer, own, RenderOptions(n_prompt + 2))
    want_ids, want_labels = expect(tokenizer, (prompt, False), ("Hello! How can I help?<|im_end|>", True))
    assert (ids, labels) == (want_ids[: n_prompt + 2], want_labels[: n_prompt + 2])
    assert tokenizer.decode([x for x in labels if x != IGNORE_INDEX]) == "Hello!"


def test_truncation_drops_a_prompt_longer_than_max_length(tokenizer, own):
    prompt = SMOL_SYSTEM + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    with pytest.raises(DropSample) as e:
        render_conversation(multi_turn(), tokenizer, own, RenderOptions(n_prompt))
    assert e.value.reason == "no trained token within max_length"


def test_document_chunks_all_trained(tokenizer):
    text = "The quick brown fox jumps over the lazy dog. " * 3
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    out = render_document(Document(text), tokenizer, RenderOptions(max_length=8))
    assert [r.input_ids for r in out] == [
        ids[i : i + 8] for i in range(0, len(ids), 8) if len(ids[i : i + 8]) > 1
    ]
    assert all(r.labels == r.input_ids for r in out)
    assert sum(len(r.input_ids) for r in out) >= len(ids) - 1
    one = render_document(Document(text), tokenizer, RenderOptions(max_length=len(ids)))
    assert [r.input_ids for r in one] == [ids]


def test_document_last_piece_of_one_token_is_dropped(tokenizer):
    text = "hello world"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    out = render_document(Document(text), tokenizer, RenderOptions(max_length=len(ids) - 1))
    assert [r.input_ids for r in out] == [ids[:-1]]


def test_bos_is_added_once_when_the_tokenizer_adds_one(tokenizer):
    tok = copy.deepcopy(tokenizer)
    tok.add_special_tokens(
        {
            "bos_token": "<|begin_of_text|>",
            "additional_special_tokens": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
        }
    )
    tok.add_bos_token = True
    bos = tok.bos_token_id
    conv = Conversation([Message("user", "Hi"), Message("assistant", "Hello")])
    ids, labels = render(conv, tok, resolve_template("llama3", tok))  # the text starts with bos already
    assert (
        ids
        == tok(
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|>",
            add_special_tokens=False,
        )["input_ids"]
    )
    assert ids.count(bos) == 1 and trained_runs(tok, ids, labels) == ["Hello<|eot_id|>"]
    ids, labels = render(conv, tok, resolve_template("chatml", tok))  # the text lacks it
    assert (
        ids[0] == bos
        and ids[1:]
        == tok(
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n",
            add_special_tokens=False,
        )["input_ids"]
    )
    assert labels[0] == IGNORE_INDEX
    assert render_document(Document("hi there"), tok, OPTS)[0].input_ids[:1] == [bos]


def test_render_prompt_ends_with_the_generation_prompt(tokenizer, own):
    msgs = [Message("system", "Be brief."), Message("user", "Hi")]
    assert (
        render_prompt(msgs, tokenizer, own)
        == tokenizer(
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
            add_special_tokens=False,
        )["input_ids"]
    )


def test_default_template_for_base_models(tokenizer):
    default = resolve_template("default", tokenizer)
    conv = Conversation([Message("system", "Be brief."), *multi_turn().messages])
    assert render(conv, tokenizer, default) == expect(
        tokenizer,
        ("Be brief.\n\nUser: Hi\nAssistant:", False),
        (" Hello! How can I help?<|im_end|>", True),
        ("\nUser: What is 2+2?\nAssistant:", False),
        (" 4<|im_end|>", True),
        ("\n", False),
    )


def test_template_that_rewrites_earlier_turns_is_refused(tokenizer):
    last_marked = Template(
        name="marks-last",
        jinja="{% for m in messages %}{{ m['role'] + ': ' + m['content'] }}{% if loop.last %}{{ ' <|im_end|>' }}"
        "{% endif %}{{ '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}",
        stop_tokens=("<|im_end|>",),
    )
    with pytest.raises(ConfigError, match="'marks-last' is not prefix-stable"):
        render_conversation(multi_turn(), tokenizer, last_marked, OPTS)


def test_template_error_drops_the_sample_with_its_reason(tokenizer):
    no_system = Template(
        name="no-system",
        jinja="{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
        "{% endif %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}",
        stop_tokens=("<|im_end|>",),
    )
    conv = Conversation([Message("system", "S"), Message("user", "Hi"), Message("assistant", "Yo")])
    with pytest.raises(DropSample) as e:
        render_conversation(conv, tokenizer, no_system, OPTS)
    assert e.value.reason == "template error: System role not supported"


def test_template_without_a_stop_token_is_refused(tokenizer):
    no_stop = Template(
        name="chatml", jinja=resolve_template("chatml", tokenizer).jinja, stop_tokens=("<|eot_id|>",)
    )
    with pytest.raises(ConfigError, match="writes none of its stop tokens"):
        render_conversation(multi_turn(), tokenizer, no_stop, OPTS)
