"""Which training samples each data-parallel rank sees in an epoch."""

from __future__ import annotations

import torch


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The same permutation on every rank, and again after a restart: derived from (seed, epoch) only."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def rank_slice(n: int, seed: int, epoch: int, rank: int, world: int) -> torch.Tensor:
    """A disjoint 1/world slice of the epoch's permutation.

    Every rank gets the same count, so every rank runs the same number of steps (DDP needs that); the at most
    world-1 samples left over are the only ones an epoch skips, and they change from epoch to epoch.
    """
    per_rank = n // world
    return epoch_permutation(n, seed, epoch)[rank * per_rank:(rank + 1) * per_rank]
