"""Sample order for training: the longest batch first (`train.longest_first`), so an out-of-memory
error happens at step 1 instead of hours in, and length grouping (`train.group_by_length`) so
padded batches hold samples of similar length. Both are seeded and deterministic, so every rank of
a distributed run draws the same order and resuming skips exactly the batches already trained."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


def lengths_of(dataset) -> list[int]:
    """Token count of every sample, read from the Arrow column without decoding the lists."""
    try:
        import pyarrow.compute as pc

        if getattr(dataset, "_indices", None) is None:
            return pc.list_value_length(dataset.data.column("input_ids")).to_pylist()
    except (ImportError, AttributeError, KeyError):
        pass
    return [len(x) for x in dataset["input_ids"]]


class LongestFirstSampler(Sampler[int]):
    """A seeded random permutation (new each epoch) with the longest sample moved to the front."""

    def __init__(self, lengths: list[int], seed: int):
        self.lengths, self.seed, self.epoch = lengths, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.lengths), generator=g).tolist()
        longest = max(range(len(self.lengths)), key=self.lengths.__getitem__)
        at = order.index(longest)
        order[0], order[at] = order[at], order[0]
        return iter(order)


def group_by_length_sampler(lengths: list[int], batch_size: int, seed: int) -> Sampler[int]:
    """transformers' LengthGroupedSampler (megabatches sorted by length, the longest first)."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    return LengthGroupedSampler(batch_size, lengths=lengths, generator=torch.Generator().manual_seed(seed))
