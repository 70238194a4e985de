"""The money and time side of the comparison, from a sweep's stored records (no torch, trains nothing).

- time to accuracy: training seconds until the validation metric first reaches a target (`time_to_targets`);
- resource-seconds that each architecture's search trials and retrains held, CPU and GPU apart, and what they cost
  in dollars at the sweep's prices (tune/sweep/prices.py): `sweep_costs`, `cost_to_reach`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobs.engine.finite import is_finite
from jobs.engine.run_result import RunResult
from tune.sweep.prices import DEFAULT_PRICES, Prices
from tune.sweep.resource_usage import HeldRun, held_seconds, held_span
from tune.sweep.trials import TrialRecord

CLASSIFICATION_TARGETS = (0.98, 0.99, 0.995)  # validation accuracy, a fraction
DETECTION_TARGETS = (0.5, 0.7, 0.9)  # validation mAP@0.5 (history key "map_50")
SECONDS_PER_HOUR = 3600.0


def time_to_targets(history: Sequence[Mapping[str, Any]], targets: Iterable[float] = CLASSIFICATION_TARGETS,
                    metric: str = "val_accuracy") -> dict[float, float | None]:
    """Training seconds until METRIC first reaches each target (>=); None where it never does.

    HISTORY: a run's per-epoch records (the loop's `history`: dicts with "epoch", "epoch_time_s" and METRIC, e.g.
    "val_accuracy" as a fraction, or "map_50" for detection with DETECTION_TARGETS), in any order: they are
    sorted by "epoch". The time is the sum of `epoch_time_s` over the epochs up to and including the first one
    whose METRIC >= target. `epoch_time_s` is training time only: the loop stops its clock before the validation
    pass and leaves out a CUDA graph capture, so neither is in the figure.
    Resolution: one validation check, i.e. one epoch. The metric is only known at the end of each epoch, so the
    target may have been crossed anywhere during the reported epoch: the figure is an upper bound, tight to that
    epoch's time. An epoch whose METRIC is missing or NaN reaches nothing but its time still counts.

    Returns {target: seconds or None}, in the order of TARGETS. Raises ValueError for an epoch without a finite,
    non-negative `epoch_time_s` before every target is reached (its cumulative time would be unknown).
    """
    wanted = list(targets)
    reached: dict[float, float | None] = dict.fromkeys(wanted)
    for record, elapsed in training_clock(history):
        if all(reached[t] is not None for t in wanted):
            break
        value = record.get(metric)
        if not is_finite(value):
            continue
        for target in wanted:
            if reached[target] is None and value >= target:
                reached[target] = elapsed
    return reached


def training_clock(history: Sequence[Mapping[str, Any]]) -> Iterator[tuple[Mapping[str, Any], float]]:
    """Each record of HISTORY in epoch order with the run's training seconds at it.

    Checks within an epoch (the loop's val_checks_per_epoch) carry `train_time_s`, the run's training seconds so
    far: with it on every record it is the clock; else the seconds are the sum of `epoch_time_s`. Lazily raises
    ValueError on reaching a record without a finite, non-negative `epoch_time_s` (its time would be unknown)."""
    elapsed = 0.0
    so_far = bool(history) and all(is_finite(h.get("train_time_s")) for h in history)
    for record in sorted(history, key=lambda h: h.get("epoch", 0)):
        seconds = record.get("epoch_time_s")
        if so_far:
            elapsed = float(record["train_time_s"])
        elif not is_finite(seconds) or seconds < 0:
            raise ValueError(f"epoch {record.get('epoch')}: epoch_time_s must be a non-negative number, "
                             f"got {seconds!r}")
        else:
            elapsed += float(seconds)
        yield record, elapsed


@dataclass
class Held:
    """Resource-seconds held: CPU-seconds and GPU-seconds (tune/sweep/resource_usage.py `held_seconds`)."""

    cpu_s: float = 0.0
    gpu_s: float = 0.0

    @classmethod
    def of(cls, run: HeldRun) -> Held:
        return cls(held_seconds(run, "CPU"), held_seconds(run, "GPU"))

    def add(self, other: Held) -> None:
        self.cpu_s += other.cpu_s
        self.gpu_s += other.gpu_s

    def usd(self, prices: Prices) -> float:
        """Dollars at PRICES: CPU_s/3600 × cpu_hour + GPU_s/3600 × gpu_hour."""
        return (self.cpu_s * prices.cpu_hour + self.gpu_s * prices.gpu_hour) / SECONDS_PER_HOUR


@dataclass
class ModelCost:
    """What one architecture's search trials and retrains held, and their sum."""

    search: Held = field(default_factory=Held)
    retrain: Held = field(default_factory=Held)
    total: Held = field(default_factory=Held)


@dataclass(frozen=True)
class RetrainCost:
    """One retrain: its model, its seed (its config's), what it held and what that cost."""

    model: str
    seed: int | None
    held: Held
    usd: float


@dataclass
class SweepCosts:
    """What the sweep held and cost at PRICES, per architecture, per retrain (in the order given) and in total;
    UNTIMED counts records without both a start and an end time (counted as 0)."""

    prices: Prices
    by_model: dict[str, ModelCost] = field(default_factory=dict)
    retrains: list[RetrainCost] = field(default_factory=list)
    total: Held = field(default_factory=Held)
    untimed: int = 0

    @property
    def total_usd(self) -> float:
        return self.total.usd(self.prices)

    def count(self, model: str, run: HeldRun) -> tuple[ModelCost, Held]:
        """What RUN held, added to MODEL's total and the sweep's, in the order counted (so the sums repeat)."""
        held, entry = Held.of(run), self.by_model.setdefault(model, ModelCost())
        self.untimed += held_span(run) is None
        entry.total.add(held)
        self.total.add(held)
        return entry, held


def sweep_costs(trials: Iterable[TrialRecord], retrains: Iterable[RunResult],
                prices: Prices = DEFAULT_PRICES) -> SweepCosts:
    """Resource-seconds each architecture held in its search TRIALS and its RETRAINS, and their dollars at PRICES.

    A run holds its share of CPUs and GPUs ("resources", e.g. {"CPU": 1.0, "GPU": 0.25}) from its start to its end
    (tune/sweep/resource_usage.py `held_seconds`): start-up, training, evaluation and idle alike, what a cloud bill
    would charge. A record without both times counts 0 (older sweeps).
    """
    costs = SweepCosts(prices)
    for trial in trials:
        entry, held = costs.count(trial.model, trial)
        entry.search.add(held)
    for result in retrains:
        entry, held = costs.count(result.model, result)
        entry.retrain.add(held)
        seed = result.config.get("seed")
        costs.retrains.append(RetrainCost(result.model, seed if isinstance(seed, int) else None, held,
                                          held.usd(prices)))
    return costs


def cost_to_reach(seconds: float | None, resources: Mapping[str, float], prices: Prices) -> float | None:
    """Dollars of holding RESOURCES ({"CPU": 1.0, "GPU": 0.25}, a run's share) for SECONDS, e.g. a time to target
    from `time_to_targets`; None when SECONDS is None (target not reached). Training seconds only: a run's
    start-up before its first epoch is not in it (see `sweep_costs` for the whole run)."""
    if seconds is None:
        return None
    return Held(seconds * float(resources.get("CPU", 0.0)), seconds * float(resources.get("GPU", 0.0))).usd(prices)


def fmt_usd(value: float) -> str:
    """Dollars with two significant figures below $1 ($0.0021), cents above ($12.35)."""
    if value >= 1 or value <= 0:
        return f"${value:,.2f}"
    return f"${value:.{1 - math.floor(math.log10(value))}f}"
