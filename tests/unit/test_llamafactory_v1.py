"""LLaMA-Factory v1 data files read with ``format: openai``: typed content parts (text, reasoning,
tool_call with a ``value``), per-message ``loss_weight``, ``tools`` as JSON text, and DPO rows as
``chosen_messages`` / ``rejected_messages`` (whole conversations sharing their prompt). The rows are
copied (shortened) from LLaMA-Factory's data/v1_sft_demo.jsonl, reason_tool_use_demo_50.jsonl and
v1_dpo_demo.jsonl."""

from __future__ import annotations

import json

import pytest

from tuneforge.config.schema import DatasetConfig
from tuneforge.data.conversation import Conversation, Message, ToolCall
from tuneforge.data.formats import FORMATS
from tuneforge.data.kinds import get_kind
from tuneforge.data.render import IGNORE_INDEX, RenderOptions, render_conversation
from tuneforge.data.sources import load_dataset
from tuneforge.data.templates import resolve_template
from tuneforge.errors import DataError, RowError

OPENAI = FORMATS.get("openai")

SFT = {  # v1_sft_demo.jsonl line 3
    "messages": [
        {"role": "user", "content": [{"type": "text", "value": "Who are you?"}], "loss_weight": 0.0},
        {
            "role": "assistant",
            "content": [{"type": "text", "value": "I am {{name}}, an AI assistant developed by {{author}}."}],
            "loss_weight": 1.0,
        },
    ]
}
REASON_TOOL = {  # reason_tool_use_demo_50.jsonl, its shortest row with a tool call (texts cut)
    "messages": [
        {
            "role": "system",
            "content": [{"type": "text", "value": "You are a methodical and expert assistant."}],
        },
        {
            "role": "user",
            "content": [{"type": "text", "value": "Retrieve 15 products from the 'Books' category."}],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "reasoning", "value": "Okay, the user wants me to retrieve 15 products. "},
                {"type": "reasoning", "value": "The function call should have category: 'Books', limit:15."},
                {
                    "type": "tool_call",
                    "value": '{"name": "get_products_in_category", "arguments": {"category": "Books", "limit": 15}}',
                },
            ],
        },
    ],
    "tools": '[{"type": "function", "function": {"name": "get_products_in_category", "description": '
    '"Fetches products from a specific category.", "parameters": {"category": {"description": '
    '"The category.", "type": "str", "default": ""}}}}]',
}
SYSTEM = "You are a helpful assistant, who always provide explanation."
QUESTION = "Concepts: fall, love, relationship, thing\n\nWrite a sentence that includes all these words."


def _v1(role: str, text: str, weight: float) -> dict:
    return {"role": role, "content": [{"type": "text", "value": text}], "loss_weight": weight}


DPO = {  # v1_dpo_demo.jsonl, its shortest row (answers cut)
    "chosen_messages": [
        _v1("system", SYSTEM, 0.0),
        _v1("user", QUESTION, 0.0),
        _v1("assistant", "When you fall in love, it's a wonderful thing.", 1.0),
    ],
    "rejected_messages": [
        _v1("system", SYSTEM, 0.0),
        _v1("user", QUESTION, 0.0),
        _v1("assistant", " Ooh, let me think! \U0001f914", 1.0),
    ],
}
V1_DPO_COLUMNS = {"chosen": "chosen_messages", "rejected": "rejected_messages"}


def convert(row: dict) -> Conversation:
    conv = OPENAI.convert(row, OPENAI.DEFAULT_COLUMNS, {})
    conv.validate()
    return conv


def test_text_parts_with_value_and_loss_weight():
    assert convert(SFT) == Conversation(
        [
            Message("user", "Who are you?", train=False),
            Message("assistant", "I am {{name}}, an AI assistant developed by {{author}}.", train=True),
        ]
    )


def test_reasoning_and_tool_call_parts_and_tools_as_json_text():
    conv = convert(REASON_TOOL)
    answer = conv.messages[2]
    assert answer.content == ""
    assert answer.reasoning == (
        "Okay, the user wants me to retrieve 15 products. The function call should have category: 'Books', limit:15."
    )
    assert answer.tool_calls == [ToolCall("get_products_in_category", '{"category": "Books", "limit": 15}')]
    assert [m.train for m in conv.messages] == [None, None, None]  # no loss_weight: the usual policy
    assert conv.tools[0]["function"]["name"] == "get_products_in_category"


def test_a_tool_call_part_may_be_an_object():
    row = {
        "messages": [
            {"role": "user", "content": "Hi"},
            {
                "role": "assistant",
                "content": [{"type": "tool_call", "value": {"name": "f", "arguments": {"a": 1}}}],
            },
        ]
    }
    assert convert(row).messages[1].tool_calls == [ToolCall("f", '{"a": 1}')]


def test_reasoning_and_tool_calls_train_under_chatml_tools(tokenizer):
    out = render_conversation(
        convert(REASON_TOOL), tokenizer, resolve_template("chatml_tools", tokenizer), RenderOptions(1024)
    )
    trained = tokenizer.decode(
        [t for t, lab in zip(out.input_ids, out.labels, strict=True) if lab != IGNORE_INDEX]
    )
    assert trained.startswith("<think>\nOkay, the user wants me to retrieve 15 products.")
    assert trained.endswith(
        '<tool_call>\n{"name": "get_products_in_category", "arguments": {"category": "Books", "limit": 15}}\n'
        "</tool_call><|im_end|>"
    )


def _with(part: dict) -> dict:
    return {"messages": [{"role": "user", "content": [part]}, {"role": "assistant", "content": "ok"}]}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            _with({"type": "image_url", "value": "cat.png"}),
            "non-text content: messages[0] has an 'image_url' part; images need a vision-language model "
            "(not supported yet)",
        ),
        (
            _with({"type": "video_url", "value": "cat.mp4"}),
            "non-text content: messages[0] has a 'video_url' part; videos need a vision-language model "
            "(not supported yet)",
        ),
        (
            _with({"type": "audio_url", "value": "cat.wav"}),
            "non-text content: messages[0] has an 'audio_url' part; audio needs an audio-language model "
            "(not supported yet)",
        ),
        (
            _with({"type": "text", "value": None}),
            "bad message: messages[0].content[0] (text) has no 'text' or 'value' string",
        ),
        (
            _with({"type": "html", "value": "<b>"}),
            "bad message: messages[0].content[0] has type 'html'; parts are text, reasoning or tool_call",
        ),
        (
            _with({"type": "reasoning", "value": "hm"}),
            "bad message: messages[0] (user) has a 'reasoning' part; only assistant messages reason",
        ),
        (
            {"messages": [SFT["messages"][0], {**SFT["messages"][1], "loss_weight": 0.5}]},
            "bad weight: messages[1] has loss_weight 0.5; only 0 (not trained) and 1 (trained) are supported, "
            "not weights in between",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": [{"type": "tool_call", "value": "{bad"}]},
                ]
            },
            "bad tool call: messages[1].content[0]: not valid JSON",
        ),
    ],
)
def test_bad_parts_name_the_message_and_the_fix(row, message):
    with pytest.raises(RowError) as e:
        convert(row)
    assert str(e.value).startswith(message)
    assert "only text parts are supported" not in str(e.value)


def test_dpo_rows_as_whole_conversations(tmp_path, tokenizer):
    path = tmp_path / "v1_dpo_demo.jsonl"
    path.write_text(json.dumps(DPO) + "\n")
    spec = DatasetConfig(path=str(path), format="openai", columns=V1_DPO_COLUMNS)
    (pair,) = load_dataset(spec, index=0, registry=None, sample_kind="preference").samples
    assert pair.prompt.messages == [
        Message("system", SYSTEM, train=False),
        Message("user", QUESTION, train=False),
    ]
    assert pair.chosen.content == "When you fall in love, it's a wonderful thing." and pair.chosen.train
    row = get_kind("preference").render(
        pair, tokenizer, resolve_template("auto", tokenizer), RenderOptions(256)
    )
    assert tokenizer.decode(row.columns["prompt_ids"]).endswith(
        QUESTION + "<|im_end|>\n<|im_start|>assistant\n"
    )
    assert (
        tokenizer.decode(row.columns["chosen_ids"])
        == "When you fall in love, it's a wonderful thing.<|im_end|>"
    )


def test_dpo_conversations_must_share_their_prompt(tmp_path):
    other = {**DPO, "rejected_messages": [_v1("user", "Something else?", 0.0), DPO["rejected_messages"][2]]}
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(other) + "\n")
    spec = DatasetConfig(path=str(path), format="openai", columns=V1_DPO_COLUMNS)
    with pytest.raises(
        DataError, match="the rejected answer changed the prompt .chosen and rejected conversations"
    ):
        load_dataset(spec, index=0, registry=None, sample_kind="preference")


def test_dpo_file_without_column_mapping_is_told_the_v1_column(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(DPO) + "\n")
    with pytest.raises(
        DataError, match=r"Did you mean 'chosen_messages'\? Set data.datasets\[0\].columns.chosen"
    ):
        load_dataset(
            DatasetConfig(path=str(path), format="openai"), index=0, registry=None, sample_kind="preference"
        )


def test_whole_conversation_answers_after_a_prompt_are_refused(tmp_path):
    row = {
        "messages": [{"role": "user", "content": "Hi"}],
        "chosen": DPO["chosen_messages"],
        "rejected": "No.",
    }
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(
        DataError, match="a list of 3 messages after the prompt in 'messages'; give one assistant"
    ):
        load_dataset(
            DatasetConfig(path=str(path), format="openai"), index=0, registry=None, sample_kind="preference"
        )
