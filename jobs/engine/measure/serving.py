"""Serving cost of a trained model: latency per image at batch 1 and throughput at a large batch.

Measured on the model's own device, in the precision it runs in ("fp32", or "bf16" = `torch.autocast(device.type,
dtype=torch.bfloat16)`, the loop's own autocast), on a CPU with the threads the run holds (`torch.get_num_threads()`).
What is timed is the model's forward only: inputs are on the device before the clock starts and outputs stay there
(on CUDA the clock stops after `torch.cuda.synchronize`, so the kernels are finished). Host-to-device copies,
decoding and pre-processing of a real request are not included.

The timing itself (`time_calls`, `measure_latency`, `measure_throughput`) takes any `forward` callable and an
injectable clock, so that it can be checked with made-up timings and reused for ONNX Runtime (onnx_export.py).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch
from torch import nn

from jobs.engine.precision import autocast

Clock = Callable[[], float]
PRECISIONS = ("fp32", "bf16")
LATENCY_CALLS, LATENCY_WARMUP = 100, 10
# A batch-256 forward of resnet18 or faster_rcnn takes seconds on a CPU: ten of them already average out the noise.
THROUGHPUT_BATCH, THROUGHPUT_CALLS, THROUGHPUT_WARMUP = 256, 10, 2
PERCENTILE_METHOD = "linear"  # numpy's default (Hyndman & Fan type 7); named so that a numpy change cannot move it


class Latency(TypedDict, total=False):
    """`measure_latency`: milliseconds per call (`latency_stats`), and how they were measured. ONNX Runtime's
    (jobs/engine/measure/onnx_export.py) adds where it ran."""

    latency_ms_p50: float
    latency_ms_p95: float
    latency_ms_mean: float
    latency_ms_min: float
    latency_ms_max: float
    latency_calls: int
    latency_warmup: int
    percentile_method: str
    unit: str
    device: str
    runtime: str
    threads: int | None
    latency_batch: int


class Throughput(TypedDict):
    """`measure_throughput`: items per second at a batch, and how it was measured."""

    throughput_per_s: float
    throughput_batch: int
    throughput_calls: int
    throughput_warmup: int
    throughput_s: float


class ServingCost(Latency, Throughput, total=False):
    """`serving_cost`: result.json's `serving`, with where and how the model ran."""

    device_name: str
    precision: str


def no_sync() -> None:
    """The sync of a device with nothing to wait for (a CPU, ONNX Runtime: their calls return when done)."""


def device_sync(device: torch.device) -> Callable[[], None]:
    """What to call before reading the clock: CUDA kernels run asynchronously, so wait for them to finish."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return no_sync


def time_calls(forward: Callable[[], Any], calls: int = LATENCY_CALLS, warmup: int = LATENCY_WARMUP,
               clock: Clock = time.perf_counter, sync: Callable[[], None] = no_sync) -> list[float]:
    """Seconds of each of CALLS timed calls of FORWARD, after WARMUP calls that are run but never timed.

    Warm-up absorbs the first calls' one-off costs (allocator growth, cuDNN/oneDNN kernel selection, lazy
    initialisation). Each timed call is `sync(); start = clock(); forward(); sync(); clock() - start`, so on CUDA
    a call's time includes its kernels finishing. Returns a list of CALLS floats, in call order.

    Raises ValueError if CALLS < 1 or WARMUP < 0.
    """
    if calls < 1 or warmup < 0:
        raise ValueError(f"need calls >= 1 and warmup >= 0, got calls={calls}, warmup={warmup}")
    for _ in range(warmup):
        forward()
    seconds = []
    for _ in range(calls):
        sync()
        start = clock()
        forward()
        sync()
        seconds.append(clock() - start)
    return seconds


def percentile(values: Sequence[float], q: float) -> float:
    """The Q-th percentile (0-100) by linear interpolation between order statistics: numpy's `method="linear"`.

    For sorted values x_0 <= ... <= x_{n-1}, the rank is r = q/100 * (n - 1) and the percentile is
    x_floor(r) + (r - floor(r)) * (x_ceil(r) - x_floor(r)). For 100 calls, p95 is x_94 + 0.05 * (x_95 - x_94).
    Raises ValueError for an empty sequence.
    """
    if not len(values):
        raise ValueError("no values to take a percentile of")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q, method=PERCENTILE_METHOD))


def latency_stats(seconds: Sequence[float]) -> Latency:
    """Milliseconds per call from per-call SECONDS: median (p50), p95 (see `percentile`), mean, min and max."""
    ms = [s * 1000.0 for s in seconds]
    return {"latency_ms_p50": percentile(ms, 50), "latency_ms_p95": percentile(ms, 95),
            "latency_ms_mean": float(np.mean(ms)), "latency_ms_min": min(ms), "latency_ms_max": max(ms)}


def measure_latency(forward: Callable[[], Any], calls: int = LATENCY_CALLS, warmup: int = LATENCY_WARMUP,
                    clock: Clock = time.perf_counter, sync: Callable[[], None] = no_sync) -> Latency:
    """Latency of FORWARD (one call = one request): `latency_stats` of `time_calls`, plus the calls and warm-up.

    Returns {"latency_ms_p50", "latency_ms_p95", "latency_ms_mean", "latency_ms_min", "latency_ms_max" (ms),
    "latency_calls", "latency_warmup", "percentile_method"}. Raises ValueError as `time_calls`.
    """
    stats = latency_stats(time_calls(forward, calls, warmup, clock, sync))
    return {**stats, "latency_calls": calls, "latency_warmup": warmup, "percentile_method": PERCENTILE_METHOD}


def measure_throughput(forward: Callable[[], Any], batch: int, calls: int = THROUGHPUT_CALLS,
                       warmup: int = THROUGHPUT_WARMUP, clock: Clock = time.perf_counter,
                       sync: Callable[[], None] = no_sync) -> Throughput:
    """Items per second of FORWARD when each call processes BATCH items: BATCH * CALLS / seconds of the CALLS calls.

    The CALLS calls are timed as one span (one clock read before, one after a final sync), not call by call: a
    throughput is total work over total time, and on CUDA back-to-back calls may overlap host and device work as
    a busy server's would. WARMUP calls before it are not timed.

    Returns {"throughput_per_s", "throughput_batch", "throughput_calls", "throughput_warmup", "throughput_s"}.
    Raises ValueError if BATCH or CALLS < 1, WARMUP < 0, or the clock did not advance over the span.
    """
    if batch < 1 or calls < 1 or warmup < 0:
        raise ValueError(f"need batch >= 1, calls >= 1, warmup >= 0; got {batch}, {calls}, {warmup}")
    for _ in range(warmup):
        forward()
    sync()
    start = clock()
    for _ in range(calls):
        forward()
    sync()
    seconds = clock() - start
    if not seconds > 0:
        raise ValueError(f"the clock did not advance over {calls} calls ({seconds} s): cannot compute a throughput")
    return {"throughput_per_s": batch * calls / seconds, "throughput_batch": batch, "throughput_calls": calls,
            "throughput_warmup": warmup, "throughput_s": seconds}


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name from /proc/cpuinfo (Linux); the device type where neither is known."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return device.type


def model_device(model: nn.Module) -> torch.device:
    """Where MODEL's parameters live (CPU for a model without any)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def serving_cost(model: nn.Module, precision: str = "fp32", images: torch.Tensor | None = None,
                 input_shape: tuple[int, ...] = (1, 28, 28), batch: int = THROUGHPUT_BATCH,
                 latency_calls: int = LATENCY_CALLS, latency_warmup: int = LATENCY_WARMUP,
                 throughput_calls: int = THROUGHPUT_CALLS, throughput_warmup: int = THROUGHPUT_WARMUP,
                 clock: Clock = time.perf_counter, unit: str = "image") -> ServingCost:
    """Latency at batch 1 and throughput at batch BATCH of MODEL, on the device its parameters are on.

    MODEL is called as `model(x)` with x a float [B, *input_shape] tensor: normalised [B, 1, 28, 28] images for a
    classifier (logits out), [B, 1, S, S] canvases in [0, 1] for the detector (see `detection_serving_cost`).
    IMAGES: [N, *input_shape] sample inputs (any device); batch-1 calls cycle through them and the large batch
    repeats them up to BATCH. None: standard normal noise (the statistics of normalised MNIST), which costs a
    classifier the same time as real digits. The model runs in eval mode under `torch.no_grad()` and is put back
    in its previous mode afterwards.

    Returns a dict (times in ms, throughput in UNITs per second):
      latency_ms_p50, latency_ms_p95, latency_ms_mean, latency_ms_min, latency_ms_max: per UNIT at batch 1;
      throughput_per_s, throughput_s: at batch BATCH;
      and how it was measured: unit, device, device_name, threads (`torch.get_num_threads()`), precision,
      latency_batch (1), latency_calls, latency_warmup, throughput_batch, throughput_calls, throughput_warmup,
      percentile_method.
    Raises ValueError for an unknown PRECISION, IMAGES of the wrong shape, or counts out of range.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    device = model_device(model)
    if images is None:
        images = torch.randn(max(1, min(batch, 64)), *input_shape)
    if tuple(images.shape[1:]) != tuple(input_shape) or not len(images):
        raise ValueError(f"images must be [N>=1, {', '.join(map(str, input_shape))}], got {list(images.shape)}")
    images = images.to(device=device, dtype=torch.float32)
    # Prepared before any timing, so that slicing and copying inputs are no part of the model's time.
    singles = [images[i:i + 1] for i in range(min(len(images), latency_calls))]
    large = images.repeat(math.ceil(batch / len(images)), *[1] * len(input_shape))[:batch].contiguous()
    sync = device_sync(device)
    calls = itertools.count()

    def one() -> Any:
        return model(singles[next(calls) % len(singles)])

    def many() -> Any:
        return model(large)

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), autocast(device, precision):
            latency = measure_latency(one, latency_calls, latency_warmup, clock, sync)
            throughput = measure_throughput(many, batch, throughput_calls, throughput_warmup, clock, sync)
    finally:
        model.train(was_training)
    return {**latency, **throughput, "unit": unit, "device": str(device), "device_name": device_name(device),
            "threads": torch.get_num_threads(), "precision": precision, "latency_batch": 1}


def detection_serving_cost(model: nn.Module, canvas_size: int = 84, canvases: torch.Tensor | None = None,
                           precision: str = "fp32", **kwargs: Any) -> ServingCost:
    """`serving_cost` of the detector per canvas: latency of one canvas, throughput in canvases per second.

    The detector is called as the detection task evaluates it: `model(x)` with x a float [B, 1, S, S] batch of
    canvases in [0, 1] (S = config["canvas_size"]); it normalises them itself. Its time depends on the content
    (NMS and the boxes kept), so pass real canvases, e.g. `as_float(task.canvases("val").images[:64])`
    (jobs/engine/tasks/detection_data.py); None means uniform noise, a stand-in only. Detection runs in fp32
    (jobs/engine/precision.py), hence the default. KWARGS go to `serving_cost` (batch, calls, clock...).
    """
    if canvases is None:
        canvases = torch.rand(16, 1, canvas_size, canvas_size)
    return serving_cost(model, precision, canvases, (1, canvas_size, canvas_size), unit="canvas", **kwargs)
