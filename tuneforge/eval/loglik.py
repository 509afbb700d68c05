"""Log-likelihood scoring: the sum of log-probabilities of continuations given contexts (multiple
choice), and the summed next-token loss over the trained tokens of rendered samples (perplexity)."""

from __future__ import annotations

import torch

from tuneforge.data.render import IGNORE_INDEX


def _pad_right(
    rows: list[list[int]], pad: int, fill_labels: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(map(len, rows))
    ids = torch.full((len(rows), longest), IGNORE_INDEX if fill_labels else pad, dtype=torch.long)
    mask = torch.zeros((len(rows), longest), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


@torch.no_grad()
def continuation_logprobs(
    model, pad_id: int, contexts: list[list[int]], continuations: list[list[list[int]]]
) -> list[list[float]]:
    """For each context, the summed log-probability of each of its continuations. When every
    continuation is one token (answer letters), one forward pass per context scores them all."""
    device = next(model.parameters()).device
    if all(len(c) == 1 for conts in continuations for c in conts):
        ids, mask = _pad_right(contexts, pad_id)
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        last = mask.sum(1) - 1
        logp = torch.log_softmax(logits[torch.arange(len(contexts)), last.to(device)], dim=-1)
        return [[float(logp[i, c[0]]) for c in conts] for i, conts in enumerate(continuations)]
    out = []
    for ctx, conts in zip(contexts, continuations, strict=True):
        rows = [ctx + c for c in conts]
        ids, mask = _pad_right(rows, pad_id)
        logp = torch.log_softmax(
            model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float(), dim=-1
        )
        scores = []
        for j, c in enumerate(conts):
            positions = torch.arange(len(ctx) - 1, len(ctx) + len(c) - 1, device=device)
            scores.append(float(logp[j, positions, torch.tensor(c, device=device)].sum()))
        out.append(scores)
    return out


@torch.no_grad()
def summed_loss(model, pad_id: int, input_ids: list[list[int]], labels: list[list[int]]) -> tuple[float, int]:
    """(sum of next-token negative log-likelihoods over labelled tokens, number of those tokens)."""
    device = next(model.parameters()).device
    ids, mask = _pad_right(input_ids, pad_id)
    lab, _ = _pad_right(labels, pad_id, fill_labels=True)
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
    shift_logits, shift_labels = logits[:, :-1], lab[:, 1:].to(device)
    nll = torch.nn.functional.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)),
        shift_labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )
    return float(nll), int((shift_labels != IGNORE_INDEX).sum())
