"""Golden ids and labels for renderer tests: text pieces, each trained or masked."""

from __future__ import annotations

from tuneforge.data.render import IGNORE_INDEX


def expect(tok, *pieces: tuple[str, bool]) -> tuple[list[int], list[int]]:
    """Ids and labels of text pieces, each trained or masked (checked to tokenize as one text)."""
    ids: list[int] = []
    labels: list[int] = []
    for text, trained in pieces:
        piece = tok(text, add_special_tokens=False)["input_ids"]
        ids += piece
        labels += piece if trained else [IGNORE_INDEX] * len(piece)
    assert ids == tok("".join(t for t, _ in pieces), add_special_tokens=False)["input_ids"]
    return ids, labels
