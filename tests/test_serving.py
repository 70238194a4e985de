"""Serving cost: the timing method on made-up timings from a fake clock (nothing real is timed), and the record of
how a model was measured."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import models
from jobs.engine import config as run_config
from jobs.engine.measure import serving


class FakeTime:
    """A clock that only moves when the fake forward runs: call i takes DURATIONS[i] seconds."""

    def __init__(self, durations: list[float]) -> None:
        self.now, self.durations, self.forwards, self.reads = 1000.0, list(durations), 0, 0

    def clock(self) -> float:
        self.reads += 1
        return self.now

    def forward(self) -> None:
        self.now += self.durations[self.forwards]
        self.forwards += 1


def hand_percentile(values: list[float], q: float) -> float:
    """Linear interpolation between order statistics at rank q/100 * (n - 1), written out (numpy's "linear")."""
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


def test_warmup_calls_are_run_but_not_timed():
    # Warm-up calls take 1000 s each: any of them in the statistics would show at once.
    timed = [0.001 * (i + 1) for i in range(7)]
    fake = FakeTime([1000.0] * 3 + timed)
    seconds = serving.time_calls(fake.forward, calls=7, warmup=3, clock=fake.clock)
    assert fake.forwards == 10
    assert seconds == pytest.approx(timed)


def test_latency_median_and_p95_of_made_up_timings():
    # 101 calls in a scrambled order, 5 warm-ups: a median and p95 of the right calls, ms.
    timed = [((37 * i) % 101 + 1) / 1000 for i in range(101)]  # 1..101 ms, shuffled
    fake = FakeTime([50.0] * 5 + timed)
    stats = serving.measure_latency(fake.forward, calls=101, warmup=5, clock=fake.clock)
    ms = [t * 1000 for t in timed]
    assert stats["latency_calls"] == 101 and stats["latency_warmup"] == 5 and fake.forwards == 106
    assert stats["latency_ms_p50"] == pytest.approx(51.0)  # the middle of 1..101
    assert stats["latency_ms_p95"] == pytest.approx(hand_percentile(ms, 95)) == pytest.approx(96.0)
    assert stats["latency_ms_mean"] == pytest.approx(51.0)
    assert stats["latency_ms_min"] == pytest.approx(1.0) and stats["latency_ms_max"] == pytest.approx(101.0)
    assert stats["percentile_method"] == "linear"


def test_p95_interpolates_between_order_statistics():
    # 100 values: rank 0.95 * 99 = 94.05, between the 95th and 96th smallest.
    values = [float(v * v) for v in range(100)]
    assert serving.percentile(values, 95) == pytest.approx(94**2 + 0.05 * (95**2 - 94**2))
    assert serving.percentile(values, 95) == pytest.approx(hand_percentile(values, 95))
    assert serving.percentile([3.0, 1.0], 50) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        serving.percentile([], 50)


def test_sync_is_called_around_every_timed_call():
    events = []
    fake = FakeTime([0.0] * 2 + [0.5] * 3)
    serving.time_calls(lambda: (events.append("f"), fake.forward()), calls=3, warmup=2, clock=fake.clock,
                       sync=lambda: events.append("s"))
    assert "".join(events) == "ff" + "sfs" * 3


def test_throughput_is_batch_times_calls_over_the_timed_span():
    fake = FakeTime([9.0, 9.0] + [0.25, 0.5, 0.25, 1.0])  # 2 s for 4 calls of 64 images after 2 warm-ups
    result = serving.measure_throughput(fake.forward, batch=64, calls=4, warmup=2, clock=fake.clock)
    assert result["throughput_per_s"] == pytest.approx(64 * 4 / 2.0)
    assert result["throughput_s"] == pytest.approx(2.0) and fake.forwards == 6
    assert (result["throughput_batch"], result["throughput_calls"], result["throughput_warmup"]) == (64, 4, 2)


@pytest.mark.parametrize("bad", [{"calls": 0}, {"warmup": -1}])
def test_bad_counts_are_refused(bad):
    with pytest.raises(ValueError):
        serving.time_calls(lambda: None, **{"calls": 3, "warmup": 0, **bad})


def test_a_clock_that_does_not_move_gives_no_throughput():
    with pytest.raises(ValueError, match="did not advance"):
        serving.measure_throughput(lambda: None, batch=8, calls=2, warmup=0, clock=lambda: 5.0)


class Recorder(nn.Module):
    """A linear classifier that notes the batch sizes and modes it is called with."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(28 * 28, 10)
        self.calls: list[tuple[int, bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((len(x), self.training, torch.is_grad_enabled()))
        return self.fc(x.flatten(1))


def test_serving_cost_of_a_model_records_how_it_was_measured():
    model = Recorder().train()
    ticks = iter(range(10**6))
    result = serving.serving_cost(model, "fp32", batch=32, latency_calls=12, latency_warmup=3, throughput_calls=2,
                                  throughput_warmup=1, clock=lambda: next(ticks) * 0.001)
    batches = [b for b, _, _ in model.calls]
    assert batches == [1] * 15 + [32] * 3
    assert not any(training or grad for _, training, grad in model.calls)  # eval mode, no autograd
    assert model.training  # put back as it was
    # Each read of the fake clock adds 1 ms: one timed call spans one tick.
    assert result["latency_ms_p50"] == pytest.approx(1.0) and result["latency_ms_p95"] == pytest.approx(1.0)
    assert result["throughput_per_s"] == pytest.approx(32 * 2 / 0.001)
    assert result["device"] == "cpu" and result["threads"] == torch.get_num_threads()
    assert (result["precision"], result["unit"], result["latency_batch"], result["throughput_batch"]) == \
        ("fp32", "image", 1, 32)
    assert (result["latency_calls"], result["latency_warmup"]) == (12, 3)
    assert (result["throughput_calls"], result["throughput_warmup"]) == (2, 1)


def test_bf16_runs_the_model_under_autocast():
    dtypes = []

    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(28 * 28, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.fc(x.flatten(1))
            dtypes.append(out.dtype)
            return out

    ticks = iter(range(10**6))
    result = serving.serving_cost(Probe(), "bf16", batch=4, latency_calls=2, latency_warmup=0, throughput_calls=1,
                                  throughput_warmup=0, clock=lambda: next(ticks) * 0.001)
    assert result["precision"] == "bf16" and set(dtypes) == {torch.bfloat16}
    with pytest.raises(ValueError, match="precision"):
        serving.serving_cost(Probe(), "fp16")


def test_a_real_cnn_and_the_detector_run_through_it():
    ticks = iter(range(10**7))
    clock = lambda: next(ticks) * 0.001  # noqa: E731
    cnn = models.build("cnn", run_config.resolve("cnn", "smoke"))
    result = serving.serving_cost(cnn, batch=8, latency_calls=3, latency_warmup=1, throughput_calls=1,
                                  throughput_warmup=0, clock=clock)
    assert result["latency_ms_p50"] > 0
    cfg = run_config.resolve("faster_rcnn", "smoke")
    detector = models.build("faster_rcnn", cfg)
    result = serving.detection_serving_cost(detector, cfg["canvas_size"], batch=2, latency_calls=2, latency_warmup=0,
                                            throughput_calls=1, throughput_warmup=0, clock=clock)
    assert result["unit"] == "canvas" and result["throughput_batch"] == 2 and result["precision"] == "fp32"
    with pytest.raises(ValueError, match="images must be"):
        serving.serving_cost(cnn, images=torch.zeros(2, 3, 28, 28))
