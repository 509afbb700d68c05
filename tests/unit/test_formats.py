"""Row formats: the exact Conversation / Document each converter produces, and the RowError (with
its drop reason) for each kind of bad row."""

from __future__ import annotations

import json

import pytest

from tuneforge.data.conversation import Conversation, Document, Message, ToolCall
from tuneforge.data.formats import FORMATS
from tuneforge.data.sources import drop_reason
from tuneforge.errors import RowError

WEATHER = {"name": "get_weather", "description": "Weather for a city.", "parameters": {"type": "object"}}
WEATHER_OPENAI = {"type": "function", "function": WEATHER}


def convert(fmt: str, row: dict, columns: dict | None = None, tags: dict | None = None):
    mod = FORMATS.get(fmt)
    sample = mod.convert(
        row, {**mod.DEFAULT_COLUMNS, **(columns or {})}, {**getattr(mod, "DEFAULT_TAGS", {}), **(tags or {})}
    )
    sample.validate()
    return sample


def reject(fmt: str, row: dict, columns: dict | None = None, tags: dict | None = None) -> tuple[str, str]:
    """The RowError message and its drop reason."""
    with pytest.raises(RowError) as info:
        convert(fmt, row, columns, tags)
    return str(info.value), drop_reason(info.value)


@pytest.mark.parametrize("name", FORMATS.names())
def test_every_format_meets_the_contract(name):
    mod = FORMATS.get(name)
    assert mod.KIND in ("conversation", "document")
    assert mod.REQUIRED and set(mod.REQUIRED) <= set(mod.DEFAULT_COLUMNS)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in mod.DEFAULT_COLUMNS.items())
    assert callable(mod.convert) and mod.__doc__


# --- alpaca --------------------------------------------------------------------------------------


def test_alpaca_joins_instruction_and_input_with_a_newline():
    row = {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"}
    want = Conversation(
        [Message("user", "Translate to French.\nGood morning"), Message("assistant", "Bonjour")]
    )
    assert convert("alpaca", row) == want
    for row in (
        {"instruction": "Hi", "input": "", "output": "x"},
        {"instruction": "", "input": "Hi", "output": "x"},
    ):
        assert convert("alpaca", row).messages[0] == Message("user", "Hi")  # no stray newline
    assert convert("alpaca", {"instruction": "Hi", "output": "x"}).messages[0] == Message("user", "Hi")


def test_alpaca_system_history_and_tools():
    row = {
        "instruction": "And in Rome?",
        "input": "",
        "output": "Rome has about 2.8 million.",
        "system": "Be brief.",
        "history": [
            ["How many people live in Paris?", "About 2.1 million."],
            ["And in Berlin?", "About 3.7 million."],
        ],
        "tools": json.dumps([WEATHER]),
    }
    assert convert("alpaca", row) == Conversation(
        [
            Message("system", "Be brief."),
            Message("user", "How many people live in Paris?"),
            Message("assistant", "About 2.1 million."),
            Message("user", "And in Berlin?"),
            Message("assistant", "About 3.7 million."),
            Message("user", "And in Rome?"),
            Message("assistant", "Rome has about 2.8 million."),
        ],
        tools=[WEATHER_OPENAI],
    )


def test_alpaca_column_map_history_as_json_text_and_numbers():
    row = {"q": "What is 40 + 2?", "a": 42, "past": '[["Hi", "Hello!"]]', "sys": ""}
    conv = convert(
        "alpaca", row, columns={"instruction": "q", "output": "a", "history": "past", "system": "sys"}
    )
    assert conv == Conversation(
        [
            Message("user", "Hi"),
            Message("assistant", "Hello!"),
            Message("user", "What is 40 + 2?"),
            Message("assistant", "42"),
        ]
    )


@pytest.mark.parametrize(
    "row, reason, detail",
    [
        ({"instruction": "Hi", "input": "", "output": ""}, "empty answer", "'output' is empty"),
        ({"instruction": "Hi", "output": None}, "missing value in column 'output'", "null or NaN"),
        ({"instruction": "", "input": " ", "output": "x"}, "empty prompt", "'instruction' and 'input'"),
        ({"instruction": "Hi", "output": "x", "history": [["only one"]]}, "bad history", "history[0]"),
        ({"instruction": "Hi", "output": "x", "history": [["q", ""]]}, "bad history", "empty answer"),
        ({"instruction": "Hi", "output": "x", "history": {"q": "a"}}, "bad history", "not a list"),
        ({"instruction": "Hi", "output": "x", "history": "[[broken"}, "bad history", "not valid JSON"),
        ({"instruction": ["Hi"], "output": "x"}, "bad instruction", "got a list"),
        (
            {"instruction": "Hi", "output": "x", "tools": [{"description": "no name"}]},
            "bad tools",
            "tools[0]",
        ),
    ],
)
def test_alpaca_bad_rows(row, reason, detail):
    msg, got = reject("alpaca", row)
    assert got == reason and detail in msg


# --- sharegpt ------------------------------------------------------------------------------------


def turns(*pairs: tuple[str, str]) -> list[dict]:
    return [{"from": f, "value": v} for f, v in pairs]


def test_sharegpt_multi_turn_with_system_column():
    row = {
        "conversations": turns(("human", "Hi"), ("gpt", "Hello!"), ("human", "Bye"), ("gpt", "Goodbye!")),
        "system": "Be kind.",
    }
    assert convert("sharegpt", row) == Conversation(
        [
            Message("system", "Be kind."),
            Message("user", "Hi"),
            Message("assistant", "Hello!"),
            Message("user", "Bye"),
            Message("assistant", "Goodbye!"),
        ]
    )


def test_sharegpt_system_turn_wins_over_the_system_column():
    row = {
        "conversations": turns(("system", "From the turn."), ("human", "Hi"), ("gpt", "Hello")),
        "system": "From the column.",
    }
    assert convert("sharegpt", row).messages[0] == Message("system", "From the turn.")


def test_sharegpt_function_call_and_observation_with_tools():
    call = {"name": "get_weather", "arguments": {"city": "Lisbon"}}
    row = {
        "conversations": turns(
            ("human", "Weather in Lisbon?"),
            ("function_call", json.dumps(call)),
            ("observation", '{"temperature": 21}'),
            ("gpt", "21 C in Lisbon."),
        ),
        "tools": json.dumps([WEATHER]),
    }
    assert convert("sharegpt", row) == Conversation(
        [
            Message("user", "Weather in Lisbon?"),
            Message("assistant", "", tool_calls=[ToolCall("get_weather", '{"city": "Lisbon"}')]),
            Message("tool", '{"temperature": 21}', name="get_weather"),
            Message("assistant", "21 C in Lisbon."),
        ],
        tools=[WEATHER_OPENAI],
    )


def test_sharegpt_parallel_calls_and_structured_observation():
    calls = [{"name": "a", "arguments": "{}"}, {"name": "b", "arguments": {"x": 1}}]
    row = {
        "conversations": [
            *turns(("human", "Go"), ("function_call", json.dumps(calls))),
            {"from": "observation", "value": {"ok": True}},
            *turns(("gpt", "Done")),
        ]
    }
    conv = convert("sharegpt", row)
    assert conv.messages[1].tool_calls == [ToolCall("a", "{}"), ToolCall("b", '{"x": 1}')]
    assert conv.messages[2] == Message("tool", '{"ok": true}')  # two calls: no single name to give


def test_sharegpt_custom_tags_and_column():
    row = {"msgs": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    tags = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}
    conv = convert("sharegpt", row, columns={"messages": "msgs"}, tags=tags)
    assert conv == Conversation([Message("user", "Hi"), Message("assistant", "Hello")])


def test_sharegpt_accepts_openai_role_names_while_tags_are_default():
    row = {"conversations": turns(("user", "Hi"), ("assistant", "Hello"))}
    assert convert("sharegpt", row) == Conversation([Message("user", "Hi"), Message("assistant", "Hello")])
    msg, reason = reject("sharegpt", row, tags={"user_tag": "person"})
    assert reason == "unknown role" and "conversations[0]" in msg and "'user'" in msg


@pytest.mark.parametrize(
    "pairs, detail",
    [
        (
            (("gpt", "Hello"), ("human", "Hi")),
            "conversations[0] is 'gpt' where a user or observation turn belongs",
        ),
        (
            (("human", "Hi"), ("human", "Again")),
            "conversations[1] is 'human' where an assistant or function_call",
        ),
        (
            (("human", "Hi"), ("gpt", "Hello"), ("human", "More?")),
            "the last turn, conversations[2] ('human'), has no answer",
        ),
        ((("system", "S"), ("human", "Hi"), ("system", "S2"), ("gpt", "x")), "conversations[2] is 'system'"),
    ],
)
def test_sharegpt_turn_order_is_checked(pairs, detail):
    msg, reason = reject("sharegpt", {"conversations": turns(*pairs)})
    assert reason == "bad turn order" and detail in msg


@pytest.mark.parametrize(
    "row, reason, detail",
    [
        ({"conversations": []}, "no messages", "'conversations' is empty"),
        ({"conversations": [{"role": "user", "content": "Hi"}]}, "bad turn", "tags.role_tag"),
        ({"conversations": [{"from": "human", "text": "Hi"}]}, "bad turn", "tags.content_tag"),
        ({"conversations": turns(("human", "Hi"), ("bot", "x"))}, "unknown role", "'bot'"),
        (
            {"conversations": turns(("human", "Hi"), ("function_call", "get_weather(city)"))},
            "bad tool call",
            "not valid JSON",
        ),
        (
            {"conversations": turns(("human", "Hi"), ("function_call", '{"arguments": {}}'))},
            "bad tool call",
            "no function name",
        ),
        (
            {"conversations": turns(("human", "Hi"), ("gpt", None))},
            "bad turn",
            "conversations[1] has a NoneType",
        ),
        ({"conversations": turns(("human", ""), ("gpt", "x"))}, "empty message", "is empty"),
        ({"conversations": "not json"}, "bad conversations", "not valid JSON"),
    ],
)
def test_sharegpt_bad_rows(row, reason, detail):
    msg, got = reject("sharegpt", row)
    assert got == reason and detail in msg


# --- openai --------------------------------------------------------------------------------------


def test_openai_tool_calls_reasoning_and_weights():
    row = {
        "messages": [
            {"role": "developer", "content": "Use tools."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "Weather "}, {"type": "text", "text": "in Paris?"}],
            },
            {
                "role": "assistant",
                "content": None,
                "reasoning_content": "I should call the tool.",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                    }
                ],
                "weight": 0,
            },
            {"role": "tool", "tool_call_id": "c1", "content": "18 C"},
            {"role": "assistant", "content": "18 C in Paris.", "reasoning": "Report it.", "weight": 1},
        ],
        "tools": [WEATHER],
    }
    assert convert("openai", row) == Conversation(
        [
            Message("system", "Use tools."),
            Message("user", "Weather in Paris?"),
            Message(
                "assistant",
                "",
                tool_calls=[ToolCall("get_weather", '{"city": "Paris"}', id="c1")],
                reasoning="I should call the tool.",
                train=False,
            ),
            Message("tool", "18 C", tool_call_id="c1"),
            Message("assistant", "18 C in Paris.", reasoning="Report it.", train=True),
        ],
        tools=[WEATHER_OPENAI],
    )


def test_openai_keeps_argument_text_and_reads_arrow_nulls_as_absent():
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    row = {
        "messages": [
            {"role": "user", "content": "Go", "tool_calls": None, "weight": None, "reasoning_content": None},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [call],
                "weight": None,
                "reasoning_content": None,
            },
        ],
        "tools": None,
    }
    conv = convert("openai", row)
    assert conv.messages[0] == Message("user", "Go")
    assert conv.messages[1] == Message("assistant", "", tool_calls=[ToolCall("f", '{"a": 1}', id="c1")])
    assert conv.tools is None


def test_openai_system_column_and_custom_messages_column():
    row = {
        "chat": json.dumps([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"}]),
        "sys": "Be brief.",
    }
    conv = convert("openai", row, columns={"messages": "chat", "system": "sys"})
    assert conv == Conversation(
        [Message("system", "Be brief."), Message("user", "Hi"), Message("assistant", "Hey")]
    )


@pytest.mark.parametrize(
    "messages, reason, detail",
    [
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            "non-text content",
            "messages[0]",
        ),
        (
            [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "x", "weight": 0.5}],
            "bad weight",
            "messages[1]",
        ),
        (
            [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{bad"}}]},
            ],
            "bad tool call",
            "messages[1].tool_calls[0]",
        ),
        (
            [{"role": "user", "content": "Hi", "tool_calls": [{"function": {"name": "f"}}]}],
            "bad message",
            "only assistant",
        ),
        ([{"content": "Hi"}], "bad message", "no 'role'"),
        (["Hi"], "bad message", "messages[0] is a str"),
        ([{"role": "user", "content": "Hi"}], "no assistant message", "no assistant"),
        (
            [
                {"role": "user", "content": "Hi"},
                {"role": "system", "content": "S"},
                {"role": "assistant", "content": "x"},
            ],
            "system message not first",
            "message 1",
        ),
        (
            [{"role": "narrator", "content": "Hi"}, {"role": "assistant", "content": "x"}],
            "unknown role",
            "narrator",
        ),
        ([], "no messages", "'messages' is empty"),
    ],
)
def test_openai_bad_rows(messages, reason, detail):
    msg, got = reject("openai", {"messages": messages})
    assert got == reason and detail in msg


# --- text ----------------------------------------------------------------------------------------


def test_text_rows_become_documents():
    assert convert("text", {"body": "Prose.\nMore."}, columns={"text": "body"}) == Document("Prose.\nMore.")
    assert [reject("text", {"text": v})[1] for v in ("  ", None, ["a"])] == [
        "empty text",
        "missing value in column 'text'",
        "bad text",
    ]
