"""Step 4 of a run, after the format converters: Conversation / Document -> input_ids + labels.

The only code that tokenizes training data, and so the only code that decides what is trained.

Masking contract (conversations):
  * By default only assistant turns are trained: what the template renders for the turn after its
    generation prompt (the content, and the tool calls and reasoning as the template renders them)
    up to and including the end-of-turn (stop) token, so the model learns to stop. System, user
    and tool turns, role headers / the generation prompt and whatever the template writes after
    the stop token (e.g. a newline) are masked with IGNORE_INDEX.
  * ``train_on_prompt=True`` trains every token (``mask_history`` then has no effect).
  * ``mask_history=True`` trains only the last assistant turn.
  * ``Message.train`` overrides both for its message: False never trains it; True trains it (an
    assistant message its answer as above, any other message its whole rendered turn).

Turns are found the same way for any jinja template: the whole conversation is rendered as text;
rendering ``messages[:i]`` with the generation prompt marks where assistant turn i starts, rendering
``messages[:i+1]`` where it ends (the end then moves back to just after its last stop token). Each
rendering must be a prefix of the whole text; a template that rewrites earlier turns raises a
ConfigError naming it (a boundary the template itself joins, like Qwen2.5 closing a run of tool
results only after the last one, is just not used as a place to cut). The text is tokenized once
(fast tokenizer, offsets, no special tokens added; a bos token is put in front only when the
tokenizer adds one and the text does not already start with it) and a token is trained when its
characters overlap a trained range.

Truncation policy (``max_length`` tokens): keep whole turns from the start while they fit (less
any trailing turns with nothing trained); if the first trained turn does not fit, cut at
``max_length`` so the start of that answer is still trained; if no trained token is left, raise
DropSample. Labels are never returned all masked.

Documents (continued pre-training): bos (if the tokenizer adds one) + text + eos, every token
trained, cut into ``max_length`` pieces; a last piece of one token is dropped (it has no target).
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from jinja2.exceptions import TemplateError

from tuneforge.data.conversation import Conversation, Document, Message, ToolCall
from tuneforge.data.templates import Template, not_prefix_stable
from tuneforge.errors import ConfigError, DataError

IGNORE_INDEX = -100

# DropSample reasons: short and fixed, so the pipeline can count dropped samples by reason.
NOTHING_TO_TRAIN = "no message to train on"
NO_TRAINED_TOKEN = "no trained token within max_length"
OPENING_ANSWER = "assistant turn opening the conversation has no generation prompt to start from"
SHORT_DOCUMENT = "document shorter than 2 tokens"
TEMPLATE_ERROR = "template error: "  # + the template's own message


@dataclass(frozen=True)
class RenderOptions:
    max_length: int
    train_on_prompt: bool = False
    mask_history: bool = False


@dataclass
class Rendered:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX where not trained, else the token id


class DropSample(Exception):
    """A sample that cannot be trained on; the pipeline counts it under ``reason`` and goes on."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


THINK = "<think>\n{reasoning}\n</think>\n\n{content}"


def template_messages(messages: list[Message], template: Template | None = None) -> list[dict]:
    """Messages as the dicts Hugging Face chat templates read (OpenAI shape, tool-call arguments as
    objects, reasoning as ``reasoning_content``); keys without a value are left out. For a template
    that has no place for reasoning, the reasoning goes into the content inside <think> tags (the
    DeepSeek-R1 / Qwen3 convention), so it is trained rather than lost."""
    fold = template is not None and "reasoning_content" not in template.jinja
    out = []
    for m in messages:
        content = m.content
        if fold and m.reasoning:
            content = THINK.format(reasoning=m.reasoning.strip(), content=m.content)
        d: dict = {"role": m.role, "content": content}
        if m.tool_calls:
            d["tool_calls"] = [_tool_call(tc) for tc in m.tool_calls]
        if m.reasoning is not None and not fold:
            d["reasoning_content"] = m.reasoning
        if m.tool_call_id is not None:
            d["tool_call_id"] = m.tool_call_id
        if m.name is not None:
            d["name"] = m.name
        out.append(d)
    return out


def _tool_call(tc: ToolCall) -> dict:
    try:  # templates expect an object (Qwen's does `arguments | tojson`); keep bad JSON as text
        arguments = json.loads(tc.arguments)
    except ValueError:
        arguments = tc.arguments
    call: dict = {"type": "function", "function": {"name": tc.name, "arguments": arguments}}
    if tc.id is not None:
        call["id"] = tc.id
    return call


def render_conversation(conv: Conversation, tokenizer, template: Template, opts: RenderOptions) -> Rendered:
    """Ids and labels for one conversation, following the masking contract and truncation policy."""
    pending = _prepare(conv, tokenizer, template, opts)
    return _finish(pending, _encode(tokenizer, pending.turns.text), opts)


def render_conversations(
    convs: list[Conversation], tokenizer, template: Template, opts: RenderOptions
) -> list[Rendered | DropSample]:
    """`render_conversation` for many conversations at once, with the same result for each (a
    DropSample in its place where it is dropped): the templates are rendered one by one, then all
    the texts are tokenized in one batched call of the Rust tokenizer, which skips the Python
    tokenizer wrapper's per-call work and spreads the batch over the CPU cores."""
    prepared = prepare_conversations(convs, tokenizer, template, opts)
    return finish_conversations(prepared, _encode_many(tokenizer, _texts(prepared)), opts)


def render_conversation_chunks(
    chunks: Iterable[list[Conversation]], tokenizer, template: Template, opts: RenderOptions
) -> Iterator[list[Rendered | DropSample]]:
    """`render_conversations` for each chunk in turn, yielded in order. A chunk's batched encode runs
    in a background thread (the Rust tokenizer releases the GIL) while the next chunk's templates
    render and the previous chunk's labels are made, so both cores stay busy."""
    with ThreadPoolExecutor(1) as pool:
        waiting = None
        for convs in chunks:
            prepared = prepare_conversations(convs, tokenizer, template, opts)
            texts = _texts(prepared)
            # only the Rust call in the thread: the Python that turns its output into token lists
            # runs here, so the thread goes back to the tokenizer (on both cores) at once
            encoding = pool.submit(_backend_encode, tokenizer, texts)
            if waiting is not None:
                yield _finish_encoded(*waiting, tokenizer, opts)
            waiting = (prepared, texts, encoding)
        if waiting is not None:
            yield _finish_encoded(*waiting, tokenizer, opts)


def _finish_encoded(prepared, texts: list[str], encoding, tokenizer, opts: RenderOptions):
    return finish_conversations(prepared, _tokens(tokenizer, texts, encoding.result()), opts)


def prepare_conversations(
    convs: list[Conversation], tokenizer, template: Template, opts: RenderOptions
) -> list[_Pending | DropSample]:
    """The Python half of `render_conversations`: each conversation rendered to text with its
    trained character ranges (or its DropSample)."""
    out: list[_Pending | DropSample] = []
    for conv in convs:
        try:
            out.append(_prepare(conv, tokenizer, template, opts))
        except DropSample as e:
            out.append(e)
    return out


def _texts(prepared: list[_Pending | DropSample]) -> list[str]:
    return [p.turns.text for p in prepared if not isinstance(p, DropSample)]


def finish_conversations(
    prepared: list[_Pending | DropSample], tokens: list[_Tokens], opts: RenderOptions
) -> list[Rendered | DropSample]:
    """The other half of `render_conversations`: labels and truncation, given the tokens of the
    prepared texts (`_texts`), in order."""
    encoded = iter(tokens)
    out: list[Rendered | DropSample] = []
    for p in prepared:
        if isinstance(p, DropSample):
            out.append(p)
            continue
        try:
            out.append(_finish(p, next(encoded), opts))
        except DropSample as e:
            out.append(e)
    return out


@dataclass
class _Pending:
    """A conversation rendered to text, with the character ranges to train, waiting for its tokens."""

    turns: _Turns
    ranges: list[tuple[int, int]]
    n_messages: int


def _prepare(conv: Conversation, tokenizer, template: Template, opts: RenderOptions) -> _Pending:
    msgs = conv.messages
    trained = _trained_flags(msgs, opts)
    if not any(trained):
        raise DropSample(NOTHING_TO_TRAIN)
    tools = conv.tools or None
    turns = _Turns(template, tokenizer, template_messages(msgs, template), tools)
    _check_nothing_lost(template, msgs, tools, turns)
    return _Pending(turns, _trained_ranges(template, msgs, trained, turns, opts), len(msgs))


def _finish(p: _Pending, tokens: _Tokens, opts: RenderOptions) -> Rendered:
    labels = _label(tokens, p.ranges)
    if not _any_trained(labels):
        raise DropSample(NOTHING_TO_TRAIN)
    ids = tokens.ids
    if len(ids) > opts.max_length:
        ids, labels = _truncate(ids, labels, tokens, p.turns, p.n_messages, opts.max_length)
    return Rendered(ids, labels)


def render_document(doc: Document, tokenizer, opts: RenderOptions) -> list[Rendered]:
    """Continued pre-training: bos (if the tokenizer adds one) + text + eos, all trained, in pieces."""
    ids = _with_bos(tokenizer, doc.text, list(tokenizer(doc.text, add_special_tokens=False)["input_ids"]))
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    pieces = [ids[i : i + opts.max_length] for i in range(0, len(ids), opts.max_length)]
    pieces = [p for p in pieces if len(p) >= 2]  # one token alone has no next token to predict
    if not pieces:
        raise DropSample(SHORT_DOCUMENT)
    return [Rendered(p, list(p)) for p in pieces]


def render_prompt(
    messages: list[Message], tokenizer, template: Template, tools: list[dict] | None = None
) -> list[int]:
    """Ids for generation: the conversation so far plus the assistant generation prompt, tokenized
    exactly as the renderer tokenizes training data."""
    try:
        text = template.render(
            tokenizer, template_messages(messages, template), tools, add_generation_prompt=True
        )
    except TemplateError as e:
        raise DataError(f"chat template {template.name!r} cannot render this conversation: {e}") from e
    return _with_bos(tokenizer, text, list(tokenizer(text, add_special_tokens=False)["input_ids"]))


def _trained_ranges(
    template: Template, msgs: list[Message], trained: list[bool], turns: _Turns, opts: RenderOptions
) -> list[tuple[int, int]]:
    """Character ranges of the text to train, sorted and disjoint."""
    if opts.train_on_prompt:  # everything, less the turns of messages marked train=False
        ranges, pos = [], 0
        for i in (i for i, m in enumerate(msgs) if m.train is False):
            ranges.append((pos, turns.start(i)))
            pos = turns.end(i)
        return [*ranges, (pos, len(turns.text))]
    ranges = []
    for i, m in enumerate(msgs):
        if trained[i] and m.role == "assistant":
            start = turns.answer_start(i)
            ranges.append((start, _answer_end(template, turns.text, start, turns.end(i), i)))
        elif trained[i]:
            ranges.append((turns.start(i), turns.end(i)))
    return ranges


def _truncate(ids, labels, tokens: _Tokens, turns: _Turns, n_messages: int, max_length: int):
    """Whole turns up to the last one with a trained token that fit; else cut inside the first answer."""
    cuts = [tokens.first_starting_at(b) for i in range(n_messages) if (b := turns.boundary(i)) is not None]
    fitting = [t for t in cuts if t <= max_length]
    trained_at = [k for k in range(1, max(fitting, default=0)) if labels[k] != IGNORE_INDEX]
    keep = min(t for t in fitting if t > trained_at[-1]) if trained_at else max_length
    if not _any_trained(labels[:keep]):
        raise DropSample(NO_TRAINED_TOKEN)
    return ids[:keep], labels[:keep]


def _trained_flags(msgs: list[Message], opts: RenderOptions) -> list[bool]:
    last = max((i for i, m in enumerate(msgs) if m.role == "assistant"), default=-1)
    flags = []
    for i, m in enumerate(msgs):
        if m.train is not None:
            flags.append(m.train)
        elif opts.train_on_prompt:
            flags.append(True)
        else:
            flags.append(m.role == "assistant" and (not opts.mask_history or i == last))
    return flags


def _render(
    template: Template, tokenizer, dicts: list[dict], tools, add_generation_prompt: bool = False
) -> str:
    try:
        return template.render(tokenizer, dicts, tools, add_generation_prompt)
    except TemplateError as e:
        raise DropSample(TEMPLATE_ERROR + str(e.message or e)[:120]) from e


class _Turns:
    """Where each message's turn starts and ends in the rendered text, found by rendering prefixes
    (only those asked for; each is checked to be a prefix of the whole text)."""

    def __init__(self, template: Template, tokenizer, dicts: list[dict], tools):
        self.template, self.tokenizer, self.dicts, self.tools = template, tokenizer, dicts, tools
        self.text = _render(template, tokenizer, dicts, tools)
        # messages rendered -> length of their text; None where that text is not a prefix
        self._ends: dict[int, int | None] = {0: 0, len(dicts): len(self.text)}

    def boundary(self, i: int) -> int | None:
        """Where message i's turn ends, or None where the template joins it to the next one (Qwen2.5
        closes a run of tool results only after the last): no turn boundary there."""
        if i + 1 not in self._ends:
            prefix = _render(self.template, self.tokenizer, self.dicts[: i + 1], self.tools)
            self._ends[i + 1] = len(prefix) if self.text.startswith(prefix) else None
        return self._ends[i + 1]

    def end(self, i: int) -> int:
        end = self.boundary(i)
        if end is None:
            raise not_prefix_stable(
                self.template, f"the first {i + 1} messages render differently once more follow"
            )
        return end

    def start(self, i: int) -> int:
        return self.end(i - 1) if i else 0

    def answer_start(self, i: int) -> int:
        """Where assistant message i's answer starts: after the generation prompt."""
        if i == 0:  # nothing before it to render: find the generation prompt inside the turn
            try:
                header = self.template.generation_prompt(self.tokenizer)
            except TemplateError as e:
                raise DropSample(TEMPLATE_ERROR + str(e.message or e)[:120]) from e
            pos = self.text.find(header, 0, self.end(0)) if header else -1
            if pos < 0:
                raise DropSample(OPENING_ANSWER)
            return pos + len(header)
        prompt = _render(
            self.template, self.tokenizer, self.dicts[:i], self.tools, add_generation_prompt=True
        )
        if len(prompt) > self.end(i) or not self.text.startswith(prompt):
            raise not_prefix_stable(
                self.template, "its generation prompt differs from how it renders assistant turns"
            )
        return len(prompt)


def _answer_end(template: Template, text: str, start: int, end: int, i: int) -> int:
    """Just after the last stop token of the turn: what follows it (a newline) is not the answer."""
    found = [p + len(tok) for tok in template.stop_tokens if (p := text.rfind(tok, start, end)) >= 0]
    if not found:
        raise ConfigError(
            f"chat template {template.name!r} writes none of its stop tokens ({', '.join(template.stop_tokens)}) "
            f"at the end of assistant message {i}, so the model would not learn to stop; use a template "
            "that ends assistant turns with one"
        )
    return max(found)


def _check_nothing_lost(template: Template, msgs: list[Message], tools, turns: _Turns) -> None:
    """A template that silently drops tool calls, reasoning or tool schemas would train the model on
    answers without them; stop instead."""
    hint = "use the model's own template (data.template=auto) or one that renders them"
    for i, m in enumerate(msgs):
        if not m.tool_calls and not m.reasoning:
            continue
        turn = turns.text[turns.boundary(i - 1) or 0 : turns.end(i)]  # boundary(-1) is 0
        for tc in m.tool_calls:
            if tc.name not in turn:
                raise ConfigError(
                    f"chat template {template.name!r} does not render tool calls (message {i} calls "
                    f"{tc.name!r}); {hint}, e.g. data.template=qwen"
                )
        if m.reasoning and m.reasoning.strip() not in turn:
            raise ConfigError(
                f"chat template {template.name!r} does not render the assistant's reasoning (message {i}); "
                f"{hint}, or leave the reasoning out of the data"
            )
    for tool in tools or []:
        name = (tool.get("function") or tool).get("name")
        if name and name not in turns.text:
            raise ConfigError(
                f"chat template {template.name!r} does not render tool schemas (tool {name!r} is missing); "
                f"{hint}, e.g. data.template=qwen"
            )


def _encode(tokenizer, text: str) -> _Tokens:
    return _encode_many(tokenizer, [text])[0]


def _encode_many(tokenizer, texts: list[str]) -> list[_Tokens]:
    """The texts' tokens (no special tokens added, a bos in front where `_with_bos` puts one), in one
    call of the backend (Rust) tokenizer."""
    return _tokens(tokenizer, texts, _backend_encode(tokenizer, texts))


def _backend_encode(tokenizer, texts: list[str]) -> list:
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


def _tokens(tokenizer, texts: list[str], encodings: list) -> list[_Tokens]:
    """`_Tokens` of each text from its Rust encoding, a bos put in front where `_with_bos` puts one."""
    if not texts:
        return []
    bos = _bos_to_add(tokenizer)
    out = []
    for text, enc in zip(texts, encodings, strict=True):
        ids = enc.ids
        shift = _lacks_bos(bos, text, ids)
        out.append(_Tokens([bos[0], *ids] if shift else ids, enc, int(shift)))
    return out


class _Tokens:
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


def _bos_to_add(tokenizer) -> tuple[int, str] | None:
    """(id, text) of the bos token when the tokenizer adds one on its own, else None."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return None
    probe = tokenizer("a", add_special_tokens=True)["input_ids"]
    return (bos, tokenizer.bos_token) if probe and probe[0] == bos else None


def _lacks_bos(bos: tuple[int, str] | None, text: str, ids: list[int]) -> bool:
    """Whether a bos (from `_bos_to_add`) goes in front: the tokenizer adds one, the text lacks it."""
    return bos is not None and not text.startswith(bos[1]) and not (ids and ids[0] == bos[0])


def _with_bos(tokenizer, text: str, ids: list[int]) -> list[int]:
    """Put the bos token in front when the tokenizer adds one on its own and the text lacks it."""
    if tokenizer.bos_token_id is None or (ids and ids[0] == tokenizer.bos_token_id):
        return ids  # decided without probing the tokenizer
    bos = _bos_to_add(tokenizer)
    return [bos[0], *ids] if _lacks_bos(bos, text, ids) else ids


def _label(tokens: _Tokens, ranges: list[tuple[int, int]]) -> list[int]:
    """A token is trained when its characters overlap a trained range."""
    ids = tokens.ids
    labels = [IGNORE_INDEX] * len(ids)
    for a, b in ranges:
        first, stop = tokens.first_ending_after(a), tokens.first_starting_at(b)
        labels[first:stop] = ids[first:stop]
    return labels


def _any_trained(labels: list[int]) -> bool:
    # position 0 is never a target of a causal LM (labels shift by one), so it does not count
    return any(x != IGNORE_INDEX for x in labels[1:])
