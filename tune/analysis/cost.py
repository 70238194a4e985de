"""The money and time side of the comparison, from a sweep's stored records (no torch, trains nothing).

- time to accuracy: training seconds until the validation metric first reaches a target (`time_to_targets`);
- resource-seconds that each architecture's search trials and retrains held, CPU and GPU apart
  (`resource_seconds`);
- prices (`parse_prices`, `DEFAULT_PRICES`) and what the sweep cost in dollars (`sweep_costs`, `cost_usd`);
- the report's verdicts (`cheapest_to_target`, `fastest_within`) and the accuracy/cost Pareto front (`cost_pareto`,
  on tune/analysis/stats.py's `pareto_front`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobs.engine.finite import is_finite
from tune.analysis.stats import pareto_front
from tune.sweep.resource_usage import HeldRun, held_seconds, parse_time

CLASSIFICATION_TARGETS = (0.98, 0.99, 0.995)  # validation accuracy, a fraction
DETECTION_TARGETS = (0.5, 0.7, 0.9)  # validation mAP@0.5 (history key "map_50")
RESOURCES = ("CPU", "GPU")
SECONDS_PER_HOUR = 3600.0
# A trial or retrain as stored: a trials.json / result.json dict, or its typed form (tune/sweep/trials.py TrialRecord,
# jobs/engine/run_result.py RunResult); both have model, started_at, finished_at and resources.
Record = Mapping[str, Any] | HeldRun


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


@dataclass(frozen=True)
class _Held:
    started_at: Any
    finished_at: Any
    resources: dict[str, float]


def field_of(run: Record, key: str) -> Any:
    """KEY of a stored dict, or the attribute of a typed record; None where it has none."""
    return run.get(key) if isinstance(run, Mapping) else getattr(run, key, None)


def held_resource_seconds(run: Record) -> dict[str, float]:
    """{"CPU": CPU-seconds, "GPU": GPU-seconds} one trial or retrain held: (finished_at - started_at) × its share.

    RUN: a trial or retrain record (`Record`) with "started_at" and "finished_at" (ISO 8601; no zone = UTC) and
    "resources" such as {"CPU": 1.0, "GPU": 0.25}; tune/sweep/resource_usage.py's `held_seconds` does the arithmetic.
    A fractional GPU counts its fraction: 100 s at GPU 0.25 is 25 GPU-seconds. The span is wall time from start to
    end (start-up, training, evaluation and idle alike): what the scheduler reserved, so what a cloud bill would
    charge. A record without both times counts 0 (older sweeps).
    """
    held = _Held(field_of(run, "started_at"), field_of(run, "finished_at"), dict(field_of(run, "resources") or {}))
    return {resource: held_seconds(held, resource) for resource in RESOURCES}


def resource_seconds(trials: Iterable[Record], retrains: Iterable[Record]) -> dict[str, Any]:
    """Resource-seconds each architecture held in its search trials and its retrains, and the sweep's total.

    TRIALS: trials.json records; RETRAINS: result.json records (dicts or their typed forms, see `Record`); both
    with "model" plus the keys of `held_resource_seconds`. Returns
      {"by_model": {model: {"search": {"CPU": s, "GPU": s}, "retrain": {...}, "total": {...}}},
       "total": {"CPU": s, "GPU": s}, "untimed": records lacking a start or end time (counted as 0)}.
    """
    by_model: dict[str, dict[str, dict[str, float]]] = {}
    total = dict.fromkeys(RESOURCES, 0.0)
    untimed = 0
    for phase, records in (("search", trials), ("retrain", retrains)):
        for run in records:
            entry = by_model.setdefault(str(field_of(run, "model")), {p: dict.fromkeys(RESOURCES, 0.0)
                                                                      for p in ("search", "retrain", "total")})
            untimed += not (parse_time(field_of(run, "started_at")) and parse_time(field_of(run, "finished_at")))
            for resource, seconds in held_resource_seconds(run).items():
                entry[phase][resource] += seconds
                entry["total"][resource] += seconds
                total[resource] += seconds
    return {"by_model": by_model, "total": total, "untimed": untimed}


@dataclass(frozen=True)
class Prices:
    """US dollars per hour of one vCPU and of one whole GPU; SOURCE says where the figures come from."""

    cpu_hour: float
    gpu_hour: float
    source: str = "--price"

    def as_dict(self) -> dict[str, Any]:
        return {"cpu_hour": self.cpu_hour, "gpu_hour": self.gpu_hour, "source": self.source}


# A dated public reference, not a quote: Google Cloud Compute Engine on-demand list prices, region us-central1
# (Iowa), as listed on cloud.google.com/compute/vm-instance-pricing (N1 predefined vCPU: $0.031611 per vCPU-hour)
# and cloud.google.com/compute/gpus-pricing (NVIDIA V100 attached to an N1 VM: $2.48 per GPU-hour), 2024; not
# re-checked since. Chosen because N1 bills vCPUs and attached GPUs as separate SKUs, which is exactly how Ray
# resources are held here. Memory ($0.004237 per GiB-hour for N1), disks and network are not priced: Ray records
# no memory share. Prices change and differ by provider, region and commitment: pass --price for real figures.
DEFAULT_PRICES = Prices(cpu_hour=0.031611, gpu_hour=2.48,
                        source="Google Cloud on-demand list prices, us-central1, 2024: N1 vCPU-hour $0.031611, "
                               "NVIDIA V100 GPU-hour $2.48 (a dated reference, not a quote)")
PRICE_KEYS = ("cpu_hour", "gpu_hour")


def parse_prices(text: str | None, defaults: Prices = DEFAULT_PRICES) -> Prices:
    """Prices from a `--price` text such as "cpu_hour=0.05,gpu_hour=2.50" (US dollars per vCPU-hour, GPU-hour).

    Keys not given keep DEFAULTS' figures; None or blank text returns DEFAULTS. Spaces around keys and values are
    ignored. Raises ValueError naming the problem for: an item without "=", an unknown or repeated key, a value
    that is not a number, negative, NaN or infinite.
    """
    if text is None or not text.strip():
        return defaults
    given: dict[str, float] = {}
    for item in text.split(","):
        key, sep, raw = (part.strip() for part in item.partition("="))
        if not sep:
            raise ValueError(f"--price: expected key=value, got {item.strip()!r} (keys: {', '.join(PRICE_KEYS)})")
        if key not in PRICE_KEYS:
            raise ValueError(f"--price: unknown key {key!r}; known keys: {', '.join(PRICE_KEYS)}")
        if key in given:
            raise ValueError(f"--price: {key} is given twice")
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"--price: {key} must be a number of US dollars per hour, got {raw!r}") from None
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"--price: {key} must be a finite, non-negative number, got {raw!r}")
        given[key] = value
    return Prices(cpu_hour=given.get("cpu_hour", defaults.cpu_hour), gpu_hour=given.get("gpu_hour", defaults.gpu_hour),
                  source=f"--price {text.strip()}" + ("" if len(given) == len(PRICE_KEYS)
                                                      else f"; otherwise {defaults.source}"))


def cost_usd(seconds: Mapping[str, float], prices: Prices) -> float:
    """Dollars for SECONDS {"CPU": CPU-seconds, "GPU": GPU-seconds}: CPU_s/3600 × cpu_hour + GPU_s/3600 × gpu_hour."""
    return (seconds.get("CPU", 0.0) * prices.cpu_hour + seconds.get("GPU", 0.0) * prices.gpu_hour) / SECONDS_PER_HOUR


def cost_to_reach(seconds: float | None, resources: Mapping[str, float], prices: Prices) -> float | None:
    """Dollars of holding RESOURCES ({"CPU": 1.0, "GPU": 0.25}, a run's share) for SECONDS, e.g. a time to target
    from `time_to_targets`; None when SECONDS is None (target not reached). Training seconds only: a run's
    start-up before its first epoch is not in it (see `sweep_costs` for the whole run)."""
    if seconds is None:
        return None
    return cost_usd({r: seconds * float(resources.get(r, 0.0)) for r in RESOURCES}, prices)


def sweep_costs(trials: Iterable[Record], retrains: Iterable[Record],
                prices: Prices = DEFAULT_PRICES) -> dict[str, Any]:
    """What the sweep cost at PRICES, per architecture, per retrain and in total (US dollars).

    TRIALS, RETRAINS: as `resource_seconds`. Returns
      {"prices": prices.as_dict(),
       "by_model": {model: {"cpu_s", "gpu_s", "search_usd", "retrain_usd", "total_usd"}},
       "retrains": [{"model", "seed" (the record's "seed", or its config's, or None), "cpu_s", "gpu_s",
                     "cost_usd"}, in RETRAINS' order],
       "cpu_s", "gpu_s", "total_usd", "untimed"}.
    """
    retrains = list(retrains)
    held = resource_seconds(trials, retrains)
    by_model = {model: {"cpu_s": e["total"]["CPU"], "gpu_s": e["total"]["GPU"],
                        "search_usd": cost_usd(e["search"], prices), "retrain_usd": cost_usd(e["retrain"], prices),
                        "total_usd": cost_usd(e["total"], prices)} for model, e in held["by_model"].items()}
    each = []
    for run in retrains:
        seconds = held_resource_seconds(run)
        seed = field_of(run, "seed")
        seed = seed if seed is not None else (field_of(run, "config") or {}).get("seed")
        each.append({"model": field_of(run, "model"), "seed": seed,
                     "cpu_s": seconds["CPU"], "gpu_s": seconds["GPU"], "cost_usd": cost_usd(seconds, prices)})
    return {"prices": prices.as_dict(), "by_model": by_model, "retrains": each, "cpu_s": held["total"]["CPU"],
            "gpu_s": held["total"]["GPU"], "total_usd": cost_usd(held["total"], prices), "untimed": held["untimed"]}


def fmt_usd(value: float) -> str:
    """Dollars with two significant figures below $1 ($0.0021), cents above ($12.35)."""
    if value >= 1 or value <= 0:
        return f"${value:,.2f}"
    return f"${value:.{1 - math.floor(math.log10(value))}f}"


def cheapest_to_target(rows: Iterable[Mapping[str, Any]], time_key: str = "time_to_99_s",
                       cost_key: str = "cost_to_99_usd", target_label: str = "99%",
                       name_key: str = "model") -> dict[str, Any] | None:
    """The architecture that reached the target for the fewest dollars: "cheapest to train to 99%: X, $Z".

    ROWS: comparison rows (plain dicts). A row is a candidate when its TIME_KEY (seconds to the target, None =
    not reached) and COST_KEY (dollars to reach it, e.g. `cost_to_reach` of that time) are both finite numbers.
    Ties go to the faster, then to the name first in sort order. Returns {"model", "cost_usd", "time_s", "text"},
    or None when no row reached the target.
    """
    candidates = [r for r in rows if is_finite(r.get(time_key)) and is_finite(r.get(cost_key))]
    if not candidates:
        return None
    best = min(candidates, key=lambda r: (r[cost_key], r[time_key], str(r[name_key])))
    return {"model": best[name_key], "cost_usd": best[cost_key], "time_s": best[time_key],
            "text": f"cheapest to train to {target_label}: {best[name_key]}, {fmt_usd(best[cost_key])}"}


def fastest_within(rows: Iterable[Mapping[str, Any]], points: float = 0.5, accuracy_key: str = "test_accuracy",
                   latency_key: str = "latency_ms_p50", name_key: str = "model",
                   unit: str = "image") -> dict[str, Any] | None:
    """The fastest to serve among architectures within POINTS percentage points of the most accurate:
    "fastest to serve within 0.5 points of the best: X at Y ms per image".

    ROWS: comparison rows (plain dicts) with ACCURACY_KEY as a fraction in [0, 1] (0.5 points = 0.005) and
    LATENCY_KEY in milliseconds per UNIT (serving.py's median at batch 1). Rows missing either are left out;
    the best accuracy is taken over the rows that have a latency. Ties go to the more accurate, then by name.
    Returns {"model", "latency_ms", "accuracy", "best_accuracy", "text"}, or None when no row has both numbers.
    """
    candidates = [r for r in rows if is_finite(r.get(accuracy_key)) and is_finite(r.get(latency_key))]
    if not candidates:
        return None
    best_accuracy = max(r[accuracy_key] for r in candidates)
    # The tolerance absorbs float noise such as 0.99 - 0.005 != 0.985 exactly.
    close = [r for r in candidates if r[accuracy_key] >= best_accuracy - points / 100 - 1e-12]
    pick = min(close, key=lambda r: (r[latency_key], -r[accuracy_key], str(r[name_key])))
    return {"model": pick[name_key], "latency_ms": pick[latency_key], "accuracy": pick[accuracy_key],
            "best_accuracy": best_accuracy,
            "text": f"fastest to serve within {points:g} points of the best: {pick[name_key]} at "
                    f"{pick[latency_key]:.3g} ms per {unit}"}


def cost_pareto(rows: Iterable[Mapping[str, Any]], accuracy_key: str = "test_accuracy", cost_key: str = "cost_usd",
                name_key: str = "model") -> list[str]:
    """Architectures no other beats on both accuracy (higher) and cost (lower), cheapest first: tune/analysis/stats.py's
    `pareto_front` on ROWS' ACCURACY_KEY and COST_KEY (rows missing either are not candidates).
    Raises ValueError if two rows share a name."""
    rows = list(rows)
    names = [str(r[name_key]) for r in rows]
    if len(set(names)) != len(names):
        raise ValueError(f"rows must have one {name_key} each, got {sorted(names)}")
    return pareto_front({str(r[name_key]): r.get(accuracy_key) for r in rows},
                        {str(r[name_key]): r.get(cost_key) for r in rows})
