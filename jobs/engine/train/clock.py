"""The run's one training clock, for the eager and the captured step alike.

A run's `train_time_s` is the seconds its steps trained: not the validation checks part-way through an epoch
(`pause`), and not the capture of the static step (`compiling`), which is tallied apart as `compile_time_s` so that
a capture is reported, never hidden in the training time nor left out of sight.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class TrainingClock:
    def __init__(self, train_time_s: float = 0.0, compile_time_s: float = 0.0) -> None:
        self.train_time_s = train_time_s  # the finished epochs' training seconds (a resumed run's from its checkpoint)
        self.compile_time_s = compile_time_s
        self._started: float | None = None
        self._left_out = 0.0  # seconds of the running epoch spent in checks or capturing

    def start_epoch(self) -> None:
        self._started, self._left_out = time.perf_counter(), 0.0

    def epoch_seconds(self) -> float:
        """Training seconds of the running epoch so far; 0 outside an epoch."""
        if self._started is None:
            return 0.0
        return time.perf_counter() - self._started - self._left_out

    def end_epoch(self) -> float:
        """Close the running epoch: its training seconds, added to `train_time_s`."""
        seconds = self.epoch_seconds()
        self.train_time_s += seconds
        self._started = None
        return seconds

    def so_far(self) -> float:
        """Training seconds since the run began, the running epoch's included: what a check part-way reports."""
        return self.train_time_s + self.epoch_seconds()

    @contextmanager
    def pause(self) -> Iterator[None]:
        """What runs inside is not training time (a validation check part-way through an epoch)."""
        begun = time.perf_counter()
        try:
            yield
        finally:
            self._left_out += time.perf_counter() - begun

    @contextmanager
    def compiling(self) -> Iterator[None]:
        """What runs inside is the capture of the static step: counted in `compile_time_s`, not training time. A
        capture that raises is not counted apart: the warm-up steps it ran trained the model, and the run goes on with
        the eager step (jobs/engine/train/static_step.py)."""
        begun = time.perf_counter()
        yield
        spent = time.perf_counter() - begun
        self._left_out += spent
        self.compile_time_s += spent
