"""A sweep stopped by a full disk: one line naming the folder, what is kept and how to continue.

Exit code 2, as for an --output that cannot be written: the user fixes it (frees space, or a larger volume), and
nothing the sweep computed is lost, since every record is written whole (jobs/engine/atomic.py); `--resume` then
continues from the finished trials and retrains (jobs/engine/run/disk_full.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from jobs.engine.run.disk_full import DiskFull, disk_full
from tune.sweep.folder import seed_results
from tune.sweep.record import Sweep


def stopped_by_full_disk(sweep: Sweep, error: BaseException | str) -> DiskFull:
    """The DiskFull to raise: where the write failed (the sweep's folder when the error does not say), and what
    stays: the trials this sweep finished (in Tune's storage, and trials.json once its search ends) and the
    retrains whose result.json is whole."""
    where = getattr(error, "filename", None) or sweep.output
    trials = sum(t.status in ("ok", "stopped") for t in sweep.trials)
    retrains = sum(len(seed_results(sweep.output, model)) for model in sweep.models)
    reason = str(error).strip().splitlines()[-1][:200] if str(error).strip() else "no space left on the device"
    return DiskFull(f"the disk is full: writing {where} ({reason}); kept in {sweep.output}: {trials} finished "
                    f"trial(s) and {retrains} finished retrain(s), every record whole; free space, then continue "
                    f"with: python -m jobs.sweep --resume {sweep.output}")


@contextmanager
def stops_on_a_full_disk(sweep: Sweep) -> Iterator[None]:
    """Inside the block, an OSError of a full disk (or a used-up quota) becomes the one-line DiskFull of
    `stopped_by_full_disk`; any other error passes as it is."""
    try:
        yield
    except OSError as exc:
        if disk_full(exc):
            raise stopped_by_full_disk(sweep, exc) from None
        raise
