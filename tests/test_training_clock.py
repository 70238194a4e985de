"""The loop's one training clock (jobs/engine/train/clock.py), on made-up time: checks part-way through an epoch
are not training, the static step's capture is counted apart, and a capture that failed stays training time."""

import pytest

from jobs.engine.train import clock as clock_module
from jobs.engine.train.clock import TrainingClock


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def now(monkeypatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(clock_module.time, "perf_counter", fake)
    return fake


def test_an_epoch_counts_its_steps_not_its_checks_nor_its_capture(now):
    clock = TrainingClock(train_time_s=10.0, compile_time_s=1.0)  # a resumed run's, from its checkpoint
    clock.start_epoch()
    now.now += 2  # steps
    with clock.pause():  # a validation check
        now.now += 3
    assert clock.so_far() == 12.0  # what the check reports: the training seconds before it
    with clock.compiling():  # the static step's warm-up and capture
        now.now += 4
    now.now += 1  # steps
    assert clock.end_epoch() == 3.0
    assert (clock.train_time_s, clock.compile_time_s) == (13.0, 5.0)
    assert clock.epoch_seconds() == 0.0 and clock.so_far() == 13.0  # between epochs nothing runs


def test_a_capture_that_failed_is_training_time(now):
    clock = TrainingClock()
    clock.start_epoch()
    with pytest.raises(RuntimeError), clock.compiling():
        now.now += 4  # its warm-up steps trained the model; the run goes on eagerly
        raise RuntimeError("capture failed")
    assert clock.end_epoch() == 4.0 and clock.compile_time_s == 0.0
