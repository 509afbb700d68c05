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
any trailing turns with nothing trained). Cut points are turn boundaries; where a turn's boundary
does not fit but the end of its trained range does (just after its stop token, before the masked
newline the template writes), the turn is kept up to its stop token, since what follows the last
trained token is masked and must not decide what is kept. If the first trained turn does not fit,
cut at ``max_length`` so the start of that answer is still trained. If no trained token is left
(the prompt before the first trained token fills ``max_length``), the prompt is shortened as
``prompt_truncation`` says (`tuneforge.data.truncate`; the prompt is the messages before the first
trained one) and the sample rendered again; with ``"drop"``, or where the policy cannot shorten
it enough, raise DropSample. Labels are never returned all masked.

Documents (continued pre-training): bos (if the tokenizer adds one) + text + eos, every token
trained, cut into ``max_length`` pieces; a last piece of one token is dropped (it has no target).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from jinja2.exceptions import TemplateError

from tuneforge.data import truncate
from tuneforge.data.conversation import Conversation, Document, Message
from tuneforge.data.rendered import (  # noqa: F401 (the renderer's types, imported from here too)
    IGNORE_INDEX,
    NO_TRAINED_TOKEN,
    NOTHING_TO_TRAIN,
    OPENING_ANSWER,
    SHORT_DOCUMENT,
    TEMPLATE_ERROR,
    TOO_DEEP,
    DropSample,
    Rendered,
    RenderOptions,
)
from tuneforge.data.template_messages import check_nothing_lost, template_messages
from tuneforge.data.templates import Template, not_prefix_stable
from tuneforge.data.tokens import Tokens, backend_encode, encode, encode_many, tokens_of, with_bos
from tuneforge.errors import ConfigError, DataError


def render_conversation(conv: Conversation, tokenizer, template: Template, opts: RenderOptions) -> Rendered:
    """Ids and labels for one conversation, following the masking contract and truncation policy."""
    pending = _prepare(conv, tokenizer, template, opts)
    return _finish(pending, encode(tokenizer, pending.turns.text), opts)


def render_conversations(
    convs: list[Conversation], tokenizer, template: Template, opts: RenderOptions
) -> list[Rendered | DropSample]:
    """`render_conversation` for many conversations at once, with the same result for each (a
    DropSample in its place where it is dropped): the templates are rendered one by one, then all
    the texts are tokenized in one batched call of the Rust tokenizer, which skips the Python
    tokenizer wrapper's per-call work and spreads the batch over the CPU cores."""
    prepared = prepare_conversations(convs, tokenizer, template, opts)
    return finish_conversations(prepared, encode_many(tokenizer, _texts(prepared)), opts)


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
            encoding = pool.submit(backend_encode, tokenizer, texts)
            if waiting is not None:
                yield _finish_encoded(*waiting, tokenizer, opts)
            waiting = (prepared, texts, encoding)
        if waiting is not None:
            yield _finish_encoded(*waiting, tokenizer, opts)


def _finish_encoded(prepared, texts: list[str], encoding, tokenizer, opts: RenderOptions):
    return finish_conversations(prepared, tokens_of(tokenizer, texts, encoding.result()), opts)


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
    prepared: list[_Pending | DropSample], tokens: list[Tokens], opts: RenderOptions
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
    conv: Conversation
    first_trained: int  # the first trained message: those before it are the prompt


def _prepare(conv: Conversation, tokenizer, template: Template, opts: RenderOptions) -> _Pending:
    msgs = conv.messages
    trained = _trained_flags(msgs, opts)
    if not any(trained):
        raise DropSample(NOTHING_TO_TRAIN)
    tools = conv.tools or None
    turns = _Turns(template, tokenizer, template_messages(msgs, template), tools)
    check_nothing_lost(template, msgs, tools, turns)
    ranges = _trained_ranges(template, msgs, trained, turns, opts)
    return _Pending(turns, ranges, conv, trained.index(True))


def _finish(p: _Pending, tokens: Tokens, opts: RenderOptions) -> Rendered:
    labels = _label(tokens, p.ranges)
    if not _any_trained(labels):
        raise DropSample(NOTHING_TO_TRAIN)
    ids = tokens.ids
    if len(ids) > opts.max_length:
        try:
            ids, labels = _truncate(ids, labels, tokens, p, opts.max_length)
        except DropSample as e:
            return _with_prompt_shortened(p, labels, opts, e)
    return Rendered(ids, labels)


def _with_prompt_shortened(
    p: _Pending, labels: list[int], opts: RenderOptions, dropped: DropSample
) -> Rendered:
    """The conversation rendered again with its prompt shortened (data.prompt_truncation) to leave
    room for its first trained run; raises ``dropped`` where the policy does not apply."""
    if p.first_trained == 0 or not truncate.applies(dropped, opts):
        raise dropped
    first = next(k for k in range(1, len(labels)) if labels[k] != IGNORE_INDEX)
    answer = next((k for k in range(first, len(labels)) if labels[k] == IGNORE_INDEX), len(labels)) - first
    tokenizer, template = p.turns.tokenizer, p.turns.template
    msgs, tools, cut = p.conv.messages, p.conv.tools, p.first_trained
    prompt = Conversation(msgs[:cut], tools=tools)
    prompt = truncate.shorten_prompt(prompt, answer, prompt_measure(tokenizer, template), tokenizer, opts)
    shorter = Conversation([*prompt.messages, *msgs[cut:]], tools=tools, origin=p.conv.origin)
    r = render_conversation(shorter, tokenizer, template, replace(opts, prompt_truncation="drop"))
    r.prompt_shortened = True
    return r


def render_document(doc: Document, tokenizer, opts: RenderOptions) -> list[Rendered]:
    """Continued pre-training: bos (if the tokenizer adds one) + text + eos, all trained, in pieces."""
    ids = with_bos(tokenizer, doc.text, list(tokenizer(doc.text, add_special_tokens=False)["input_ids"]))
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
    except RecursionError:
        raise DataError(
            f"chat template {template.name!r} cannot render this conversation: {TOO_DEEP}"
        ) from None
    return with_bos(tokenizer, text, list(tokenizer(text, add_special_tokens=False)["input_ids"]))


def prompt_measure(tokenizer, template: Template) -> truncate.Measure:
    """`tuneforge.data.truncate`'s measure: a prompt's tokens with the assistant header, as rendered
    for training; a template that fails on a shortened prompt drops the sample."""

    def measure(msgs: list[Message], tools) -> int:
        try:
            return len(render_prompt(msgs, tokenizer, template, tools))
        except DataError as e:
            raise DropSample(TEMPLATE_ERROR + str(e)[:120]) from e

    return measure


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


def _truncate(ids, labels, tokens: Tokens, p: _Pending, max_length: int):
    """Whole turns up to the last one with a trained token that fit (a turn whose boundary does not
    fit up to the end of its trained range); else cut inside the first answer."""
    turns = p.turns
    n_messages = len(p.conv.messages)
    cuts = [tokens.first_starting_at(b) for i in range(n_messages) if (b := turns.boundary(i)) is not None]
    fitting = [t for t in cuts if t <= max_length]
    # just after a trained range (its stop token): a cut only where no turn boundary after it fits,
    # so a sample that keeps its whole turns is cut exactly as before
    ends = [e for _, b in p.ranges if (e := tokens.first_starting_at(b)) <= max_length]
    trained_at = [k for k in range(1, max(fitting + ends, default=0)) if labels[k] != IGNORE_INDEX]
    if trained_at:
        last = trained_at[-1]
        keep = min([t for t in fitting if t > last] or [e for e in ends if e > last])
    else:
        keep = max_length
    if not _any_trained(labels[:keep]):
        raise DropSample(NO_TRAINED_TOKEN, f"{len(ids)} tokens; max_length {max_length}")
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
    except RecursionError:  # tool schemas or arguments nested deeper than jinja can walk
        raise DropSample(TOO_DEEP) from None


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


def _label(tokens: Tokens, ranges: list[tuple[int, int]]) -> list[int]:
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
