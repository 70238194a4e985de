"""How an epoch's samples are cut into training batches: every sample once, and no batch smaller than MIN_BATCH.

A remainder of one image is a batch some models cannot take: BatchNorm in training mode needs more than one value
per channel, and a 1x1 feature map of one image has one (`--set stride=2 --set pooling=none --set
train_limit=1025` trained an epoch of 8 batches of 128, then died on the ninth, of one image). A remainder smaller
than MIN_BATCH is folded into the batch before it (one last batch of batch_size + 1) rather than dropped, as
torchvision's references and timm do with `drop_last=True`: folding keeps the loop's promise that every sample is
used once per epoch (jobs/engine/data/sharding.py), never drops a whole epoch when the training set is smaller than a
batch, and costs one slightly larger step. The eager loop (jobs/engine/train/epoch.py), its validation parts
(jobs/engine/train/loop.py) and the captured step's tail (jobs/engine/train/static_step.py) all cut an epoch here.

What folding cannot fix, a batch_size of 1 or a data-parallel rank with fewer than MIN_BATCH samples in all, is
refused when the config is checked (jobs/engine/config.py).
"""

from __future__ import annotations

import itertools

from jobs.engine.config import MIN_BATCH

__all__ = ["MIN_BATCH", "batch_bounds", "full_and_tail", "steps_per_epoch"]


def batch_bounds(size: int, batch_size: int) -> list[tuple[int, int]]:
    """[begin, end) of each training batch of an epoch of SIZE samples: BATCH_SIZE each, the last one larger by a
    remainder smaller than MIN_BATCH; [] for SIZE 0. Only an epoch of fewer than MIN_BATCH samples in all has a
    batch smaller than MIN_BATCH."""
    starts = list(range(0, size, batch_size))
    if len(starts) > 1 and size - starts[-1] < MIN_BATCH:
        starts.pop()  # fold the remainder into the batch before it
    return list(itertools.pairwise([*starts, size]))


def steps_per_epoch(size: int, batch_size: int) -> int:
    """How many optimizer steps an epoch of SIZE samples takes (len(batch_bounds(...)), without the list)."""
    full, tail = divmod(size, batch_size)
    return full + (1 if tail and (tail >= MIN_BATCH or full == 0) else 0)


def full_and_tail(size: int, batch_size: int) -> tuple[int, int]:
    """(batches of exactly BATCH_SIZE, samples in the last, other-sized batch or 0): what a captured step replays
    and what it runs eagerly at its own size. The tail is a remainder, or BATCH_SIZE plus a folded one."""
    full, tail = divmod(size, batch_size)
    if 0 < tail < MIN_BATCH and full > 0:
        return full - 1, batch_size + tail
    return full, tail
