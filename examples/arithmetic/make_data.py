"""Write the two-digit arithmetic data set used by examples/arithmetic/arithmetic.yaml.

    python examples/arithmetic/make_data.py --out examples/arithmetic/data

DIR/train.jsonl holds alpaca rows ({"instruction", "input", "output"}) whose questions use varied
phrasings and whose answers are short and always end with the result ("47 + 38 = 85");
DIR/test.jsonl holds held-out {"prompt", "answer", "worked"} rows ("What is 23 - 71?" -> "-48",
worked "23 - 71 = -48") for the before/after comparison (answer) and a held-out loss (worked). Operands are 10-99, the operator is + or -, results may be negative, and no
(operand, operator, operand) triple appears in both files. ``--heldout N`` also writes DIR/heldout.jsonl:
N more test rows, drawn apart (its own random stream) from the questions in neither file, for a
before/after comparison with less noise than 50 questions (the GRPO demo); train.jsonl and test.jsonl
do not change with it. The output depends only on the arguments.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

LOW, HIGH = 10, 99
OPS = ("+", "-")
WORDS = {"+": "plus", "-": "minus"}
TRAIN_PHRASINGS = (
    "What is {a} {op} {b}?",
    "Calculate {a} {op} {b}.",
    "Compute {a} {op} {b}.",
    "What does {a} {op} {b} equal?",
    "{a} {op} {b} = ?",
    "Work out {a} {op} {b}.",
    "Solve: {a} {op} {b}",
    "What is {a} {word} {b}?",
)
TEST_PHRASING = "What is {a} {op} {b}?"


def all_triples() -> list[tuple[int, str, int]]:
    return [(a, op, b) for a in range(LOW, HIGH + 1) for op in OPS for b in range(LOW, HIGH + 1)]


def result(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b


def train_row(rng: random.Random, a: int, op: str, b: int) -> dict:
    question = rng.choice(TRAIN_PHRASINGS).format(a=a, op=op, b=b, word=WORDS[op])
    return {"instruction": question, "input": "", "output": f"{a} {op} {b} = {result(a, op, b)}"}


def test_row(a: int, op: str, b: int) -> dict:
    return {
        "prompt": TEST_PHRASING.format(a=a, op=op, b=b),
        "answer": str(result(a, op, b)),
        # the answer as training writes it, so a held-out loss measures the trained form
        "worked": f"{a} {op} {b} = {result(a, op, b)}",
    }


def make(n_train: int, n_test: int, seed: int) -> tuple[list[dict], list[dict]]:
    triples = all_triples()
    if n_train < 0 or n_test < 0 or n_train + n_test > len(triples):
        raise ValueError(f"--train + --test must be between 0 and {len(triples)} (distinct questions)")
    rng = random.Random(seed)
    picked = rng.sample(triples, n_train + n_test)
    train = [train_row(rng, *t) for t in picked[:n_train]]
    test = [test_row(*t) for t in picked[n_train:]]
    return train, test


def heldout(n: int, seed: int, used: list[dict]) -> list[dict]:
    """``n`` test rows whose questions are in neither train.jsonl nor test.jsonl."""
    taken = {r["worked"].rsplit(" = ", 1)[0] for r in used if "worked" in r}
    taken |= {r["output"].rsplit(" = ", 1)[0] for r in used if "output" in r}
    free = [t for t in all_triples() if f"{t[0]} {t[1]} {t[2]}" not in taken]
    if n > len(free):
        raise ValueError(f"--heldout must be at most {len(free)} (questions left)")
    return [test_row(*t) for t in random.Random(seed + 1).sample(free, n)]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for train.jsonl and test.jsonl")
    parser.add_argument("--train", type=int, default=400, help="training rows (default 400)")
    parser.add_argument("--test", type=int, default=50, help="held-out test rows (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--heldout", type=int, default=0, help="rows for heldout.jsonl (default 0: none)")
    args = parser.parse_args(argv)
    try:
        train, test = make(args.train, args.test, args.seed)
        extra = heldout(args.heldout, args.seed, train + test) if args.heldout else []
    except ValueError as e:
        parser.error(str(e))
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out / "train.jsonl", train)
    write_jsonl(args.out / "test.jsonl", test)
    print(
        f"wrote {len(train)} rows to {args.out / 'train.jsonl'} and {len(test)} to {args.out / 'test.jsonl'}"
    )
    if extra:
        write_jsonl(args.out / "heldout.jsonl", extra)
        print(f"wrote {len(extra)} rows to {args.out / 'heldout.jsonl'}")


if __name__ == "__main__":
    main()
