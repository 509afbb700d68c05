"""Sample order for training: the heaviest batch first (`speed.longest_first`), so an out-of-memory
error happens at step 1 instead of hours in and the process's memory peaks at once, and length
grouping (`speed.group_by_length`) so padded batches hold samples of similar length. Both are
seeded and deterministic, so every rank of a distributed run draws the same order and resuming
skips exactly the batches already trained."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

# the token columns of each sample shape: rendered ids, preference pairs (ours and TRL's padded
# pair columns), unpaired KTO samples; a sample's length is the sum of its shape's columns
_LENGTH_COLUMNS = (
    ("input_ids",),
    ("chosen_input_ids", "rejected_input_ids"),
    ("prompt_ids", "chosen_ids", "rejected_ids"),
    ("prompt_ids", "completion_ids"),
    ("chosen_ids", "rejected_ids"),
)


def lengths_of(dataset) -> list[int]:
    """Token count of every sample, read from the Arrow columns without decoding the lists."""
    names = set(dataset.column_names)
    columns = next((c for c in _LENGTH_COLUMNS if set(c) <= names), None)
    if columns is None:
        raise ValueError(f"no token columns to order by among {sorted(names)}")
    total = [0] * len(dataset)
    for name in columns:
        for i, n in enumerate(_column_lengths(dataset, name)):
            total[i] += n
    return total


def _column_lengths(dataset, name: str) -> list[int]:
    try:
        import pyarrow.compute as pc

        if getattr(dataset, "_indices", None) is None:
            return pc.list_value_length(dataset.data.column(name)).to_pylist()
    except (ImportError, AttributeError, KeyError):
        pass
    return [len(x) for x in dataset[name]]


class LongestFirstSampler(Sampler[int]):
    """A seeded random permutation (new each epoch) whose first ``first`` samples are the longest
    ones (in random order): the first step's batch, on every rank, is then the heaviest the data
    has, both padded (its longest sample) and padding-free (its total tokens, which is what a
    padding-free batch's memory grows with). Later steps then need no memory the first did not,
    so an out-of-memory error comes at step 1, and the allocator stops asking the system for fresh
    pages after it (each fresh page is a fault and, with huge pages, 2 MiB zeroed)."""

    def __init__(self, lengths: list[int], seed: int, first: int = 1):
        self.lengths, self.seed, self.epoch = lengths, seed, 0
        self.first = max(1, min(first, len(lengths)))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.lengths), generator=g).tolist()
        # the longest `first`, ties broken by the random order; stable sort keeps that order
        heaviest = set(sorted(order, key=self.lengths.__getitem__, reverse=True)[: self.first])
        return iter([i for i in order if i in heaviest] + [i for i in order if i not in heaviest])


def group_by_length_sampler(lengths: list[int], batch_size: int, seed: int) -> Sampler[int]:
    """transformers' LengthGroupedSampler (megabatches sorted by length, the longest first)."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    return LengthGroupedSampler(batch_size, lengths=lengths, generator=torch.Generator().manual_seed(seed))
