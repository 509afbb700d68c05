"""The lm_eval task: a harness task from a local YAML runs on our loaded tiny model and agrees with
our own log-likelihood scoring; unknown and download-needing tasks fail with one line."""

from __future__ import annotations

import json

import pytest

from tuneforge.errors import ConfigError, DataError
from tuneforge.eval.loglik import continuation_logprobs
from tuneforge.eval.runner import parse_tasks
from tuneforge.eval.target import Target
from tuneforge.eval.tasks import TASKS
from tuneforge.eval.tasks.lm_eval import flatten

pytest.importorskip("lm_eval")

ROWS = [
    {"question": "The sky is", "choices": ["blue", "green", "loud"], "answer": 0},
    {"question": "Two plus two is", "choices": ["five", "four"], "answer": 1},
    {"question": "Fire is", "choices": ["cold", "hot", "wet"], "answer": 1},
]


@pytest.fixture(scope="module")
def target(tiny_llama_dir, tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    return Target(model, tokenizer, tokenizer.chat_template, ("<|im_end|>",), "model")


@pytest.fixture()
def include_path(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in ROWS))
    (tmp_path / "tf_tiny.yaml").write_text(
        f"""task: tf_tiny
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
output_type: multiple_choice
test_split: test
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: acc
"""
    )
    return tmp_path


def _task(**raw):
    return parse_tasks([{"name": "lm_eval", **raw}], "test")[0]


def test_flatten_results():
    results = {
        "arc": {"alias": "arc", "acc,none": 0.5, "acc_stderr,none": 0.1, "acc_norm,none": 0.25},
        "g": {"exact_match,strict": 1},
    }
    assert flatten(results) == {"arc/acc": 0.5, "arc/acc_norm": 0.25, "g/exact_match_strict": 1.0}


def test_local_harness_task_on_our_model(target, include_path):
    res = TASKS.get("lm_eval").run(_task(tasks=["tf_tiny"], include_path=str(include_path)), target)
    tok = target.tokenizer
    contexts = [tok(r["question"], add_special_tokens=False)["input_ids"] for r in ROWS]
    conts = [[tok.encode(" " + c, add_special_tokens=False) for c in r["choices"]] for r in ROWS]
    scores = continuation_logprobs(target.model, 0, contexts, conts)
    expected = (
        sum(max(range(len(s)), key=s.__getitem__) == r["answer"] for s, r in zip(scores, ROWS, strict=True))
        / 3
    )
    assert res.metrics["tf_tiny/acc"] == pytest.approx(expected)


def test_unknown_harness_task(target, include_path):
    with pytest.raises(ConfigError, match="did you mean 'tf_tiny'"):
        TASKS.get("lm_eval").run(_task(tasks=["tf_tiyn"], include_path=str(include_path)), target)


def test_task_needing_a_download_fails_in_one_line_offline(target, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="need their data from the Hugging Face hub"):
        TASKS.get("lm_eval").run(_task(tasks=["arc_easy"], limit=2), target)
