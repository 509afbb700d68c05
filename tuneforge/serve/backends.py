"""Generation backends for `tuneforge serve`: turn one prompt (token ids) into text pieces.

A backend loads the `Catalog`'s base model and adapters once, then answers ``generate`` calls one at
a time from the engine's worker thread (`tuneforge.serve.engine`), so the HTTP event loop never
runs model code. ``transformers`` is the default and runs anywhere; ``vllm`` is chosen by
``--backend auto`` only where vLLM is installed and a CUDA GPU is present.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from tuneforge.serve.catalog import Catalog

log = logging.getLogger(__name__)


@dataclass
class Generation:
    """One generation request, after the HTTP layer has rendered and checked it."""

    prompt_ids: list[int]
    adapter: str | None
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop_ids: list[int] = field(default_factory=list)  # end-of-turn / eos token ids
    stop_strings: list[str] = field(default_factory=list)  # the request's `stop`


@dataclass
class Outcome:
    finish_reason: str  # "stop" | "length" | "cancelled"
    completion_tokens: int


class TextStream:
    """Incremental detokenization with stop strings: emits text as soon as it cannot be the start of
    a stop string, and ends the text before the first stop string (which is never sent)."""

    def __init__(self, tokenizer, stop_strings: list[str], emit: Callable[[str], None]):
        self.tokenizer, self.stops, self.emit = tokenizer, stop_strings, emit
        self.ids: list[int] = []
        self.sent = 0  # characters of the decoded text already emitted
        self.stopped = False

    def add(self, ids: list[int]) -> None:
        if self.stopped:
            return
        self.ids.extend(ids)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return  # a multi-byte character is not complete yet
        cut = min((i for i in (text.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._send(text[:cut])
            return
        hold = max((_overlap(text, s) for s in self.stops), default=0)
        self._send(text[: len(text) - hold])

    def finish(self) -> None:
        if not self.stopped:
            self._send(self.tokenizer.decode(self.ids, skip_special_tokens=True))

    def _send(self, text: str) -> None:
        if len(text) > self.sent:
            self.emit(text[self.sent :])
            self.sent = len(text)


def _overlap(text: str, stop: str) -> int:
    """Length of the longest end of ``text`` that is a beginning of ``stop``."""
    for n in range(min(len(stop) - 1, len(text)), 0, -1):
        if text.endswith(stop[:n]):
            return n
    return 0


class TransformersBackend:
    """`model.generate` on a transformers model; adapters are PEFT adapters of one PeftModel."""

    name = "transformers"

    def __init__(self, catalog: Catalog):
        from transformers import AutoTokenizer

        from tuneforge.models.load import check_weight_files, load_model

        trust = catalog.model.trust_remote_code  # the command's --trust-remote-code (see catalog)
        self.tokenizer = AutoTokenizer.from_pretrained(catalog.tokenizer_dir, trust_remote_code=trust)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        method = catalog.method
        if method is None:
            from tuneforge.methods.full import Config as FullConfig

            method = FullConfig(name="full")
        model = load_model(catalog.model, method)
        if catalog.adapters:
            from peft import PeftModel

            names = list(catalog.adapters)
            for folder in catalog.adapters.values():
                check_weight_files(folder)
            model = PeftModel.from_pretrained(model, catalog.adapters[names[0]], adapter_name=names[0])
            for name in names[1:]:
                model.load_adapter(catalog.adapters[name], adapter_name=name)
        model.eval()
        self.model = model
        self.context_length = _context_length(model.config)

    def generate(
        self, job: Generation, emit: Callable[[str], None], cancelled: Callable[[], bool]
    ) -> Outcome:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList
        from transformers.generation.streamers import BaseStreamer

        text = TextStream(self.tokenizer, job.stop_strings, emit)
        generated: list[int] = []

        class Collect(BaseStreamer):
            first = True

            def put(self, value):
                if self.first:  # generate() first pushes the prompt
                    self.first = False
                    return
                tokens = [int(t) for t in value.reshape(-1).tolist()]
                generated.extend(tokens)
                text.add([t for t in tokens if t not in job.stop_ids])

            def end(self):
                pass

        class Stop(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                done = text.stopped or cancelled()
                return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

        device = next(self.model.parameters()).device
        ids = torch.tensor([job.prompt_ids], device=device)
        kwargs = dict(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=job.max_new_tokens,
            do_sample=job.temperature > 0,
            eos_token_id=job.stop_ids or None,
            pad_token_id=self.tokenizer.pad_token_id,
            streamer=Collect(),
            stopping_criteria=StoppingCriteriaList([Stop()]),
        )
        if job.temperature > 0:
            kwargs.update(temperature=job.temperature, top_p=job.top_p, top_k=0)
        if job.seed is not None:
            torch.manual_seed(job.seed)
        with torch.no_grad(), self._adapter(job.adapter):
            self.model.generate(**kwargs)
        text.finish()
        if cancelled():
            reason = "cancelled"
        elif text.stopped or (generated and generated[-1] in job.stop_ids):
            reason = "stop"
        else:
            reason = "length"
        return Outcome(reason, len(generated))

    def _adapter(self, name: str | None):
        from peft import PeftModel

        if not isinstance(self.model, PeftModel):
            return contextlib.nullcontext()
        if name is None:
            return self.model.disable_adapter()
        self.model.set_adapter(name)
        return contextlib.nullcontext()


def _context_length(config) -> int | None:
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None
