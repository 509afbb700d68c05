"""`from_documents`: text files cut into overlapping chunks, and question / answer pairs written
from each chunk by the teacher (answers drawn from the chunk)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.generate.recipes._base import RecipeConfig, Sample

DESCRIPTION = "question / answer pairs written from chunks of text files"
PROMPT = (
    "Here is a passage:\n\n{{ chunk }}\n\n"
    "Write {{ count }} questions a reader could ask that this passage answers, each with its answer "
    'drawn from the passage. Answer with a JSON array of {"question": "...", "answer": "..."} and nothing else.'
)
SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "properties": {
            "question": {"type": "string", "minLength": 1},
            "answer": {"type": "string", "minLength": 1},
        },
        "required": ["question", "answer"],
    },
}


class Config(RecipeConfig):
    name: Literal["from_documents"] = "from_documents"
    paths: list[str] = Field(description="Text files (.txt, .md), or folders of them.")
    chunk_chars: int = Field(1500, ge=100, description="Characters per chunk.")
    overlap: int = Field(200, ge=0, description="Characters each chunk shares with the one before.")
    per_chunk: int = Field(3, ge=1, le=50, description="Question / answer pairs asked for per chunk.")
    prompt: str = Field(PROMPT, description="How pairs are asked for (Jinja; `chunk`, `count`).")


def chunks(text: str, size: int, overlap: int) -> list[str]:
    """Pieces of whole words of at most ``size`` characters (a longer word is a piece of its own),
    each starting with the last words, up to ``overlap`` characters, of the piece before."""
    words, out, i = text.split(), [], 0
    while i < len(words):
        j, length = i + 1, len(words[i])
        while j < len(words) and length + 1 + len(words[j]) <= size:
            length += 1 + len(words[j])
            j += 1
        out.append(" ".join(words[i:j]))
        if j >= len(words):
            break
        k, back = j, 0
        while k - 1 > i and back + len(words[k - 1]) + 1 <= overlap:
            k -= 1
            back += len(words[k]) + 1
        i = k
    return out


def run(cfg: Config, ctx) -> list:
    from tuneforge.generate.context import documents

    pieces = [
        (path, k, c)
        for path, text in documents(cfg.paths, "recipe.paths")
        for k, c in enumerate(chunks(text, cfg.chunk_chars, cfg.overlap))
    ]
    users = [ctx.render(cfg.prompt, chunk=c, count=cfg.per_chunk) for _, _, c in pieces]
    found = ctx.ask_json(users, "questions from chunks", SCHEMA)
    samples = []
    for (path, k, _), pairs in zip(pieces, found, strict=True):
        for pair in (pairs or [])[: cfg.per_chunk]:
            messages = [*ctx.conversation(pair["question"]), {"role": "assistant", "content": pair["answer"]}]
            prov = ctx.origin("questions from chunks", cfg.prompt, document=path, chunk=k)
            samples.append(Sample(messages, provenance=prov))
    return samples[: cfg.limit]
