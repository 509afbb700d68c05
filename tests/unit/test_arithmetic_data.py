"""examples/arithmetic/make_data.py: the files are deterministic, no question is in two of them, and
asking for heldout.jsonl leaves train.jsonl and test.jsonl as they were."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.examples import load_example

ROOT = Path(__file__).parents[2]


def _make_data():
    return load_example("examples/arithmetic/make_data.py")


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _question(row: dict) -> str:
    return (row.get("worked") or row["output"]).rsplit(" = ", 1)[0]


def test_heldout_is_apart_and_changes_nothing_else(tmp_path):
    md = _make_data()
    md.main(["--out", str(tmp_path / "a"), "--train", "60", "--test", "20"])
    md.main(["--out", str(tmp_path / "b"), "--train", "60", "--test", "20", "--heldout", "30"])
    for name in ("train.jsonl", "test.jsonl"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    train, test, extra = (_read(tmp_path / "b" / n) for n in ("train.jsonl", "test.jsonl", "heldout.jsonl"))
    assert len(extra) == 30
    sets = [{_question(r) for r in rows} for rows in (train, test, extra)]
    assert sum(map(len, sets)) == len(set.union(*sets)) == 110  # no question twice
    for row in extra:
        a, op, b = row["prompt"].removeprefix("What is ").rstrip("?").split()
        assert int(row["answer"]) == (int(a) + int(b) if op == "+" else int(a) - int(b))
    md.main(["--out", str(tmp_path / "c"), "--train", "60", "--test", "20", "--heldout", "30"])
    assert (tmp_path / "c" / "heldout.jsonl").read_text() == (tmp_path / "b" / "heldout.jsonl").read_text()


def test_the_shipped_files_are_what_the_script_writes(tmp_path):
    _make_data().main(["--out", str(tmp_path), "--heldout", "200"])
    for name in ("train.jsonl", "test.jsonl", "heldout.jsonl"):
        assert (tmp_path / name).read_text() == (ROOT / "examples/arithmetic/data" / name).read_text(), name
