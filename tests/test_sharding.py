"""Data-parallel sharding: each rank a disjoint 1/N slice; together an epoch covers every sample once."""

import pytest
import torch

from jobs.engine.data.sharding import rank_slice


@pytest.mark.parametrize(("n", "world"), [(55_000, 1), (55_000, 2), (55_000, 3), (1_001, 4)])
def test_ranks_are_disjoint_and_cover_the_epoch(n, world):
    slices = [rank_slice(n, seed=7, epoch=3, rank=r, world=world) for r in range(world)]
    assert len({len(s) for s in slices}) == 1  # same step count on every rank
    joined = torch.cat(slices)
    assert len(joined.unique()) == len(joined)  # disjoint
    assert len(joined) == n - n % world  # everything but the < world leftovers
    assert joined.min() >= 0 and joined.max() < n


def test_epochs_reshuffle_and_are_reproducible():
    first = rank_slice(1000, seed=1, epoch=0, rank=0, world=2)
    assert torch.equal(first, rank_slice(1000, seed=1, epoch=0, rank=0, world=2))  # same after a restart
    assert not torch.equal(first, rank_slice(1000, seed=1, epoch=1, rank=0, world=2))
    assert not torch.equal(first, rank_slice(1000, seed=2, epoch=0, rank=0, world=2))


def test_leftovers_change_between_epochs():
    n, world = 1001, 2
    left = [set(range(n)) - set(torch.cat([rank_slice(n, 0, e, r, world) for r in range(world)]).tolist())
            for e in range(5)]
    assert all(len(s) == 1 for s in left) and len(set.union(*left)) > 1
