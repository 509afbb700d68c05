"""Preference and KTO data: converters for every chat shape (alpaca, sharegpt, openai, LLaMA-Factory's
ranking entries), golden ids for a rendered pair, and one-line errors naming file and row."""

from __future__ import annotations

import json
import logging

import pytest

from tuneforge.config.schema import DatasetConfig
from tuneforge.data.conversation import Message
from tuneforge.data.dataset_registry import DatasetRegistry
from tuneforge.data.kinds import get_kind
from tuneforge.data.render import RenderOptions
from tuneforge.data.sources import load_dataset
from tuneforge.data.templates import resolve_template
from tuneforge.errors import DataError

# <|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n
SYSTEM = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182, 2, 198]  # fmt: skip
# <|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n
PROMPT = SYSTEM + [1, 4093, 198, 34, 27, 34, 47, 2, 198, 1, 520, 9531, 198]
CHOSEN = [36, 30, 2]  # "4.<|im_end|>": the answer and its stop token, nothing after
REJECTED = [26423, 28, 339, 1510, 30, 2]  # "Five, I think.<|im_end|>"

ROWS = {
    "alpaca": {"instruction": "2+2?", "input": "", "chosen": "4.", "rejected": "Five, I think."},
    "sharegpt": {  # LLaMA-Factory's dpo_en_demo.json shape
        "conversations": [{"from": "human", "value": "2+2?"}],
        "chosen": {"from": "gpt", "value": "4."},
        "rejected": {"from": "gpt", "value": "Five, I think."},
    },
    "openai": {
        "messages": [{"role": "user", "content": "2+2?"}],
        "chosen": [{"role": "assistant", "content": "4."}],  # TRL's conversational shape
        "rejected": "Five, I think.",  # plain text works too
    },
}


def _load(tmp_path, rows, fmt, kind="preference", name="d.json", **spec):
    path = tmp_path / name
    path.write_text(json.dumps(rows))
    return load_dataset(
        DatasetConfig(path=str(path), format=fmt, **spec), index=0, registry=None, sample_kind=kind
    )


@pytest.mark.parametrize("fmt", sorted(ROWS))
def test_pair_golden_ids_in_every_format(fmt, tmp_path, tokenizer):
    ds = _load(tmp_path, [ROWS[fmt]], fmt)
    (pair,) = ds.samples
    assert pair.chosen == Message("assistant", "4.") and pair.rejected == Message(
        "assistant", "Five, I think."
    )
    row = get_kind("preference").render(
        pair, tokenizer, resolve_template("auto", tokenizer), RenderOptions(128)
    )
    assert row.columns == {"prompt_ids": PROMPT, "chosen_ids": CHOSEN, "rejected_ids": REJECTED}
    assert (row.tokens, row.trained) == (len(PROMPT) + 3 + 6, 3 + 6)


def test_llamafactory_ranking_entry_works_unchanged(tmp_path, tokenizer):
    (tmp_path / "dpo_en_demo.json").write_text(json.dumps([ROWS["sharegpt"]] * 2))
    info = {"dpo_en_demo": {"file_name": "dpo_en_demo.json", "ranking": True, "formatting": "sharegpt",
                            "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}},
            "kto_en_demo": {"file_name": "kto.json", "formatting": "sharegpt",
                            "columns": {"messages": "messages", "kto_tag": "label"},
                            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                                     "assistant_tag": "assistant"}}}  # fmt: skip
    (tmp_path / "kto.json").write_text(
        json.dumps(
            [
                {
                    "messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4."}],
                    "label": True,
                }
            ]
        )
    )
    reg = DatasetRegistry(info, tmp_path / "dataset_info.json")
    pairs = load_dataset(DatasetConfig(name="dpo_en_demo"), index=0, registry=reg, sample_kind="preference")
    kind = get_kind("preference")
    row = kind.render(pairs.samples[0], tokenizer, resolve_template("auto", tokenizer), RenderOptions(128))
    assert row.columns["chosen_ids"] == CHOSEN and row.columns["prompt_ids"] == PROMPT
    kto = load_dataset(DatasetConfig(name="kto_en_demo"), index=0, registry=reg, sample_kind="unpaired")
    (sample,) = kto.samples
    assert sample.label is True and sample.completion == Message("assistant", "4.")
    row = get_kind("unpaired").render(
        sample, tokenizer, resolve_template("auto", tokenizer), RenderOptions(128)
    )
    assert row.columns == {"prompt_ids": PROMPT, "completion_ids": CHOSEN, "label": True}


def test_multi_turn_prompt_keeps_earlier_answers_as_context(tmp_path, tokenizer):
    row = {
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                     {"role": "user", "content": "2+2?"}],
        "chosen": {"role": "assistant", "content": "4."}, "rejected": {"role": "assistant", "content": "5."},
    }  # fmt: skip
    (pair,) = _load(tmp_path, [row], "openai").samples
    out = get_kind("preference").render(
        pair, tokenizer, resolve_template("auto", tokenizer), RenderOptions(128)
    )
    assert tokenizer.decode(out.columns["prompt_ids"]).endswith(
        "Hello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert out.columns["chosen_ids"] == CHOSEN


def test_truncation_keeps_the_start_of_both_answers(tmp_path, tokenizer):
    row = {**ROWS["alpaca"], "rejected": "Five, I think. " * 40}
    (pair,) = _load(tmp_path, [row], "alpaca").samples
    out = get_kind("preference").render(
        pair, tokenizer, resolve_template("auto", tokenizer), RenderOptions(48)
    )
    assert len(out.columns["prompt_ids"]) + len(out.columns["rejected_ids"]) == 48
    assert out.columns["chosen_ids"] == CHOSEN


BAD = [
    ("missing rejected", {"instruction": "2+2?", "chosen": "4.", "rejected": None}, "alpaca", "preference",
     "missing rejected: column 'rejected' is empty or absent"),
    ("empty prompt", {"conversations": [], "chosen": "4.", "rejected": "5."}, "sharegpt", "preference",
     "empty prompt"),
    ("label not boolean", {"instruction": "2+2?", "output": "4.", "label": "yes"}, "alpaca", "unpaired",
     "bad label: column 'label' is 'yes'; use true (a good answer) or false (a bad one)"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "row", "fmt", "kind", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_rows_name_file_and_row(what, row, fmt, kind, message, tmp_path, caplog):
    # a file of only bad rows stops with an error naming the file and the first bad row
    with pytest.raises(DataError) as info:
        _load(tmp_path, [row], fmt, kind)
    assert "d.json line 1" in str(info.value) and message in str(info.value)
    # among good rows it is dropped, counted and reported once with its file and line
    good = {"alpaca": ROWS["alpaca"], "sharegpt": ROWS["sharegpt"]}[fmt]
    if kind == "unpaired":
        good = {"instruction": "2+2?", "output": "4.", "label": False}
    with caplog.at_level(logging.WARNING):
        ds = _load(tmp_path, [good, row], fmt, kind, name="mixed.json")
    assert len(ds.samples) == 1 and sum(ds.dropped.values()) == 1
    assert any("mixed.json line" in r.message and message in r.message for r in caplog.records)


def test_a_file_without_the_rejected_column_is_refused(tmp_path):
    with pytest.raises(
        DataError, match=r"d.json: no column 'rejected'.*Set data.datasets\[0\].columns.rejected"
    ):
        _load(tmp_path, [{"instruction": "2+2?", "chosen": "4."}], "alpaca")


def test_kto_labels_from_csv_text(tmp_path):
    path = tmp_path / "k.csv"
    path.write_text("instruction,output,label\n2+2?,4.,true\n2+2?,5.,False\n")
    ds = load_dataset(
        DatasetConfig(path=str(path), format="alpaca"), index=0, registry=None, sample_kind="unpaired"
    )
    assert [s.label for s in ds.samples] == [True, False]
