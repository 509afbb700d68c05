"""Generation with the chat template a run trained with: used by the before/after comparison,
`tuneforge chat` and export smoke tests. Greedy unless a `Sampling` says otherwise (only `tuneforge
chat` does; comparisons and checks stay greedy so their answers repeat)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from tuneforge.errors import ConfigError


@dataclass(frozen=True)
class Sampling:
    """How the next token is picked: greedy at temperature 0, else drawn from the temperature-scaled
    distribution cut to its ``top_p`` mass, as `tuneforge serve` draws (no top-k: OpenAI's fields).
    ``seed`` makes a draw repeat; without one every call draws afresh. Checked when made, in the
    words of `tuneforge chat`'s flags."""

    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if not self.temperature >= 0:  # also NaN
            raise ConfigError(f"--temperature {self.temperature}: use 0 (greedy) or more, e.g. 0.7")
        if not 0 < self.top_p <= 1:
            raise ConfigError(
                f"--top-p {self.top_p}: use a share of the probability mass in (0, 1], e.g. 0.9"
            )
        if self.temperature == 0 and (self.top_p != 1 or self.seed is not None):
            given = "--top-p" if self.top_p != 1 else "--seed"
            raise ConfigError(f"{given} applies only when sampling; add --temperature (e.g. 0.7; 0 = greedy)")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def generate_kwargs(self) -> dict:
        """The ``model.generate`` arguments that pick tokens this way."""
        if self.greedy:
            return {"do_sample": False}
        return {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p, "top_k": 0}

    @contextlib.contextmanager
    def random_state(self) -> Iterator[None]:
        """Draw from ``seed`` (or from fresh entropy: PyTorch starts every process at the same seed)
        inside the block, and leave the caller's random state as it was."""
        if self.greedy:
            yield
            return
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
        with torch.random.fork_rng(devices=devices):
            if self.seed is None:
                torch.seed()
            else:
                torch.manual_seed(self.seed)
            yield


GREEDY = Sampling()


def stop_token_ids(tokenizer, stop_tokens: tuple[str, ...] | list[str] = ()) -> list[int]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    for tok in stop_tokens:
        tid = tokenizer.convert_tokens_to_ids(tok)
        if tid is not None and tid != tokenizer.unk_token_id:
            ids.add(tid)
    return sorted(ids)


def prompt_ids(tokenizer, messages: list[dict], chat_template: str | None = None) -> list[int]:
    """Ids of the conversation so far plus the generation prompt, tokenized exactly as the
    renderer tokenizes training data (same BOS handling, same tool-call shape)."""
    from tuneforge.data.conversation import Message
    from tuneforge.data.render import render_prompt
    from tuneforge.data.templates import Template

    template = Template("run", chat_template or tokenizer.chat_template, ())
    msgs = [Message(role=m["role"], content=m.get("content") or "") for m in messages]
    return render_prompt(msgs, tokenizer, template)


@torch.no_grad()
def generate_answers(
    model,
    tokenizer,
    conversations: list[list[dict]],
    *,
    chat_template: str | None = None,
    stop_tokens: tuple[str, ...] | list[str] = (),
    max_new_tokens: int = 64,
    batch_size: int = 8,
    sampling: Sampling = GREEDY,
    stop_strings: tuple[str, ...] | list[str] = (),
) -> list[str]:
    """Answers for a list of conversations (each a list of {role, content}); greedy unless
    ``sampling`` says otherwise. An answer ends before the first of ``stop_strings`` it holds (as
    OpenAI's ``stop``: the stop string is not returned)."""
    was_training = model.training
    model.eval()
    eos = stop_token_ids(tokenizer, stop_tokens)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    device = next(model.parameters()).device
    answers: list[str] = []
    for start in range(0, len(conversations), batch_size):
        batch = [prompt_ids(tokenizer, c, chat_template) for c in conversations[start : start + batch_size]]
        longest = max(map(len, batch))
        ids = torch.full((len(batch), longest), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, row in enumerate(batch):  # left padding, so every answer starts at the same column
            ids[i, longest - len(row) :] = torch.tensor(row)
            mask[i, longest - len(row) :] = 1
        with sampling.random_state():
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                eos_token_id=eos,
                pad_token_id=pad,
                **({"stop_strings": list(stop_strings), "tokenizer": tokenizer} if stop_strings else {}),
                **sampling.generate_kwargs(),
            )
        for row in out[:, longest:]:
            text = tokenizer.decode(row, skip_special_tokens=True)
            cut = min((i for i in (text.find(s) for s in stop_strings) if i >= 0), default=len(text))
            answers.append(text[:cut].strip())
    if was_training:
        model.train()
    return answers
