"""Generation with the chat template a run trained with: used by the before/after comparison,
`tuneforge chat` and export smoke tests."""

from __future__ import annotations

import torch


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
) -> list[str]:
    """Greedy answers for a list of conversations (each a list of {role, content})."""
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
        out = model.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=eos,
            pad_token_id=pad,
        )
        for row in out[:, longest:]:
            answers.append(tokenizer.decode(row, skip_special_tokens=True).strip())
    if was_training:
        model.train()
    return answers
