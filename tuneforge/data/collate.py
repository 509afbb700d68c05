"""Padding-free batching (`speed.padding_free`) and dataset packing (`speed.packing`).

Both put several samples in one row with position ids restarting at 0 for each sample and no
attention mask. transformers (>= 4.53, checked in 5.23 `masking_utils.find_packed_sequence_indices`)
then builds a block-diagonal causal mask from the position ids for eager and sdpa attention, and
flash-attention uses variable-length kernels, so a token attends only to its own sample. It does so
only when no KV cache is in play, and models build one whenever ``use_cache`` is on, which their
config turns on by default even in training: so the batch says ``use_cache=False``.
`tuneforge.speed.setup` checks this on the actual model before turning padding-free on (packed
logits must equal separate ones), rather than trusting the model family.

Each sample's first label is set to -100: in a packed row the token before it is the last token of
the previous sample, which must not learn to predict it; on its own that label is never a target
either (causal LM losses shift labels by one), so packed and unpacked losses are the same sums
over the same targets.
"""

from __future__ import annotations

import bisect

import torch

from tuneforge.data.render import IGNORE_INDEX


def fit_rows(lengths: list[int], capacity: int) -> list[list[int]]:
    """Best-fit decreasing: indices of ``lengths`` grouped into rows of at most ``capacity`` tokens
    (a longer item gets a row of its own)."""
    rows: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (tokens left, row index), sorted
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        n = lengths[i]
        at = bisect.bisect_left(free, (n, -1))
        if at < len(free):
            left, row = free.pop(at)
            rows[row].append(i)
            left -= n
        else:
            rows.append([i])
            row, left = len(rows) - 1, capacity - n
        if left > 0:
            bisect.insort(free, (left, row))
    return rows


def packed_collate(pad_token_id: int, row_tokens: int | None, segments: bool = False):
    """Collate samples (or pre-packed rows carrying ``position_ids``) into rows of at most
    ``row_tokens`` tokens (``None``: the whole batch in one row), padded to the longest row; the
    padding is a block of its own with label -100. ``segments``: the batch also carries each
    sample's bounds for `tuneforge.speed.varlen_attention`."""

    def collate(features: list[dict]) -> dict[str, torch.Tensor]:
        units = []
        for f in features:
            ids = torch.as_tensor(f["input_ids"], dtype=torch.long)
            labels = torch.as_tensor(f["labels"], dtype=torch.long).clone()
            pos = f.get("position_ids")
            pos = torch.arange(len(ids)) if pos is None else torch.as_tensor(pos, dtype=torch.long)
            labels[pos == 0] = IGNORE_INDEX
            units.append((ids, labels, pos))
        lengths = [len(u[0]) for u in units]
        capacity = max(max(lengths), row_tokens or sum(lengths))
        rows = [[units[i] for i in row] for row in fit_rows(lengths, capacity)]
        width = max(sum(len(u[0]) for u in row) for row in rows)
        ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        pos = torch.empty((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            at = 0
            for u_ids, u_labels, u_pos in row:
                n = len(u_ids)
                ids[r, at : at + n], labels[r, at : at + n], pos[r, at : at + n] = u_ids, u_labels, u_pos
                at += n
            pos[r, at:] = torch.arange(width - at)
        # without use_cache=False, the model (config.use_cache=True) builds a KV cache even in
        # training, and transformers then skips the packed-sequence mask: samples would see each other
        batch = {"input_ids": ids, "labels": labels, "position_ids": pos, "use_cache": False}
        if segments:
            from tuneforge.speed.varlen_attention import SEGMENTS_KEY, segments_of

            batch[SEGMENTS_KEY] = segments_of(pos)
        return batch

    return collate


def pack_dataset(dataset, max_length: int):
    """`speed.packing`: the dataset's samples packed into rows of at most ``max_length`` tokens
    (best-fit decreasing, so rows are nearly full), each row with restarting position ids."""
    import datasets

    from tuneforge.data.order import lengths_of

    ids, labels = dataset["input_ids"], dataset["labels"]
    out: dict[str, list] = {"input_ids": [], "labels": [], "position_ids": []}
    for row in fit_rows(lengths_of(dataset), max_length):
        r_ids, r_labels, r_pos = [], [], []
        for i in row:
            r_ids += ids[i]
            r_labels += [IGNORE_INDEX] + labels[i][1:]
            r_pos += range(len(ids[i]))
        out["input_ids"].append(r_ids)
        out["labels"].append(r_labels)
        out["position_ids"].append(r_pos)
    return datasets.Dataset.from_dict(out)


def pad_collate(pad_token_id: int):
    """Pad a list of {input_ids, labels} to the longest in the batch (right padding)."""

    def collate(features: list[dict]) -> dict[str, torch.Tensor]:
        longest = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), longest), pad_token_id, dtype=torch.long)
        labels = torch.full((len(features), longest), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(features), longest), dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n] = torch.as_tensor(f["input_ids"])
            labels[i, :n] = torch.as_tensor(f["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    return collate
