"""The renderer's tokenization (`tuneforge.data.render`): rendered text -> token ids in one batched
call of the Rust tokenizer, and where the text's characters fall among them, found from the Rust
encoding (the renderer labels and cuts by character position). Step 4 of a run; nothing else
tokenizes training data.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from tuneforge.errors import ConfigError


def encode(tokenizer, text: str) -> Tokens:
    return encode_many(tokenizer, [text])[0]


def encode_many(tokenizer, texts: list[str]) -> list[Tokens]:
    """The texts' tokens (no special tokens added, a bos in front where `with_bos` puts one), in one
    call of the backend (Rust) tokenizer."""
    return tokens_of(tokenizer, texts, backend_encode(tokenizer, texts))


def backend_encode(tokenizer, texts: list[str]) -> list:
    """The Rust encodings of ``texts`` (no special tokens added), in one batched call."""
    if not texts:
        return []
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if not getattr(tokenizer, "is_fast", False) or backend is None:
        raise ConfigError(
            f"the renderer needs a fast tokenizer (one with a tokenizer.json) for character offsets; "
            f"{type(tokenizer).__name__} is not one; convert the tokenizer or use the model's fast tokenizer"
        )
    return backend.encode_batch(texts, add_special_tokens=False)


def tokens_of(tokenizer, texts: list[str], encodings: list) -> list[Tokens]:
    """`Tokens` of each text from its Rust encoding, a bos put in front where `with_bos` puts one."""
    if not texts:
        return []
    bos = bos_to_add(tokenizer)
    out = []
    for text, enc in zip(texts, encodings, strict=True):
        ids = enc.ids
        shift = lacks_bos(bos, text, ids)
        out.append(Tokens([bos[0], *ids] if shift else ids, enc, int(shift)))
    return out


class Tokens:
    """A text's token ids, and where its characters fall among them.

    Converting every token's offsets to Python costs more than the rest of labelling, and a sample
    needs only a few places (each trained range's ends, turn boundaries when truncating): those are
    found from the Rust encoding (`char_to_token`, then a step or two along the neighbours to meet
    the bisect definitions exactly, as byte tokens of one character share its offsets). The full
    offsets are built only where a character belongs to no token. Token 0 is a put-in-front bos
    when ``shift`` is 1, a zero-width token at position 0.
    """

    __slots__ = ("_enc", "_offsets", "_shift", "ids")

    def __init__(self, ids: list[int], enc, shift: int):
        self.ids, self._enc, self._shift = ids, enc, shift
        self._offsets: list[tuple[int, int]] | None = None

    def offsets(self) -> list[tuple[int, int]]:
        if self._offsets is None:
            self._offsets = [(0, 0)] * self._shift + self._enc.offsets
        return self._offsets

    def _span(self, k: int) -> tuple[int, int]:
        """Token k's (start, end), a zero-width token counted as covering its own position."""
        s, e = (0, 0) if k < self._shift else self._enc.token_to_chars(k - self._shift)
        return s, e if e > s else s + 1

    def first_ending_after(self, a: int) -> int:
        """The first token whose characters end after position ``a``."""
        t = self._enc.char_to_token(a)
        if t is None:
            return bisect_right([e if e > s else s + 1 for s, e in self.offsets()], a)
        k = t + self._shift
        while k > 0 and self._span(k - 1)[1] > a:
            k -= 1
        return k

    def first_starting_at(self, b: int) -> int:
        """The first token whose characters start at or after position ``b``."""
        t = self._enc.char_to_token(b - 1) if b > 0 else None
        if t is None:
            return bisect_left([s for s, _ in self.offsets()], b)
        k = t + self._shift + 1
        while k < len(self.ids) and self._span(k)[0] < b:
            k += 1
        return k


def bos_to_add(tokenizer) -> tuple[int, str] | None:
    """(id, text) of the bos token when the tokenizer adds one on its own, else None."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return None
    probe = tokenizer("a", add_special_tokens=True)["input_ids"]
    return (bos, tokenizer.bos_token) if probe and probe[0] == bos else None


def lacks_bos(bos: tuple[int, str] | None, text: str, ids: list[int]) -> bool:
    """Whether a bos (from `bos_to_add`) goes in front: the tokenizer adds one, the text lacks it."""
    return bos is not None and not text.startswith(bos[1]) and not (ids and ids[0] == bos[0])


def with_bos(tokenizer, text: str, ids: list[int]) -> list[int]:
    """Put the bos token in front when the tokenizer adds one on its own and the text lacks it."""
    if tokenizer.bos_token_id is None or (ids and ids[0] == tokenizer.bos_token_id):
        return ids  # decided without probing the tokenizer
    bos = bos_to_add(tokenizer)
    return [bos[0], *ids] if lacks_bos(bos, text, ids) else ids
