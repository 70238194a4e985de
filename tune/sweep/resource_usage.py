"""How busy a sweep kept its cluster: resource-seconds that trials and retrains held, over what the cluster had."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol


def parse_time(stamp: Any) -> datetime | None:
    """An ISO 8601 time; one without a time zone is taken as UTC, so it still compares with the others."""
    try:
        moment = datetime.fromisoformat(str(stamp))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def busy_resource(totals: dict[str, float]) -> str:
    """GPUs when the cluster has them (they are what a sweep pays for), else CPUs."""
    return "GPU" if (totals.get("GPU") or 0) > 0 else "CPU"


class HeldRun(Protocol):
    """A trial (tune/sweep/trials.py TrialRecord) or a retrain (jobs/engine/run_result.py RunResult): when it
    held what."""

    started_at: str | None
    finished_at: str | None
    resources: dict[str, float]


def held_span(run: HeldRun) -> float | None:
    """Wall seconds from RUN's start to its end (start-up, training, evaluation and idle alike: what the scheduler
    reserved, so what a cloud bill charges); None for a record without both times (an older sweep's)."""
    start, end = parse_time(run.started_at), parse_time(run.finished_at)
    if not start or not end:
        return None
    return max((end - start).total_seconds(), 0.0)


def held_seconds(run: HeldRun, resource: str) -> float:
    """RESOURCE x seconds one trial or retrain held (a fractional GPU counts its fraction: 100 s at GPU 0.25 is
    25 GPU-seconds); 0 for a record without times. The one rule every count of held resources goes through."""
    span = held_span(run)
    return 0.0 if span is None else span * float((run.resources or {}).get(resource) or 0.0)


def cluster_busy(runs: list[HeldRun], wall_time_s: float, totals: dict[str, float]) -> float | None:
    """Held resource-seconds / (wall time x the cluster's total of that resource); None before any wall time."""
    resource = busy_resource(totals)
    capacity = wall_time_s * totals.get(resource, 0.0)
    if capacity <= 0:
        return None
    return min(1.0, sum(held_seconds(run, resource) for run in runs) / capacity)
