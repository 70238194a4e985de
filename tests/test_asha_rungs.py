"""ASHA has rungs to act on in one-epoch trials: validation checks within an epoch, each a Tune iteration. That ASHA
stops a weak trial at one of them is shown on the session's reference sweep (tests/test_reference_sweep.py)."""

from __future__ import annotations

from jobs.engine.train.loop import check_parts


def test_an_epoch_splits_on_batch_boundaries_into_at_most_the_checks_asked():
    assert check_parts(1000, 100, 4) == [(0, 300), (300, 600), (600, 900), (900, 1000)]
    assert check_parts(1000, 100, 1) == [(0, 1000)]
    assert check_parts(250, 100, 4) == [(0, 100), (100, 200), (200, 250)]  # 3 batches: no empty part
    assert check_parts(0, 64, 4) == [(0, 0)]
    for size, batch, checks in [(12_000, 64, 4), (1024, 16, 3), (999, 7, 5)]:
        parts = check_parts(size, batch, checks)
        assert parts[0][0] == 0 and parts[-1][1] == size and len(parts) <= checks
        assert all(begin % batch == 0 for begin, _ in parts)  # the same steps as one unbroken epoch
        assert sum((end - begin + batch - 1) // batch for begin, end in parts) == -(-size // batch)
