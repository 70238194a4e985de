"""Trial records of a finished (or restored) search: the declared type `trials.json` stores a list of."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypedDict

from jobs.engine.finite import finite_or_none
from models.registry import Config
from tune.sweep.resource_usage import parse_time
from tune.sweep.upgrade import Json, upgrade_trial

if TYPE_CHECKING:
    from ray.tune import Result


class Check(TypedDict, total=False):
    """One validation check of a trial, as its history keeps it (HISTORY_KEYS; mAP only for detection): the
    epoch is fractional for a check within an epoch; a NaN or infinite value is stored as None."""

    epoch: float
    train_loss: float | None
    val_loss: float | None
    val_accuracy: float | None
    val_f1_macro: float | None
    epoch_time_s: float | None
    train_time_s: float | None
    images_per_s: float | None
    map_50: float | None
    map: float | None


HISTORY_KEYS = tuple(Check.__annotations__)  # what a trial's history keeps of each report, in this order
ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(Error|Exception|Failure)\b.*)$")


@dataclass
class TrialRecord:
    """One Tune trial of one architecture: its sampled config, how it ended, its per-epoch history and when and on
    what it ran (driver's clock, ISO 8601). `status` is ok (ran every epoch), stopped (by ASHA) or failed."""

    model: str
    trial_id: str
    status: str
    error: str | None = None
    config: Config = field(default_factory=dict)
    val_accuracy: float | None = None  # the highest over its epochs
    epochs_run: float = 0
    history: list[Check] = field(default_factory=list)
    started_at: str | None = None
    finished_at: str | None = None
    startup_s: float | None = None  # from its start to its first training step
    resources: dict[str, float] = field(default_factory=dict)
    cost: float | None = None  # the --objective cost of its configuration (tune/sweep/objectives.py), if any

    def to_json(self) -> Json:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, record: Json) -> TrialRecord:
        """A trials.json entry of this or an earlier version (tune/sweep/upgrade.py). ValueError if not one."""
        return cls(**upgrade_trial(record, cls))


def short_reason(error: BaseException | str | None) -> str | None:
    """The last `SomethingError: message` line of a (possibly remote, nested) traceback."""
    if error is None:
        return None
    lines = [m.group(1).strip() for m in map(ERROR_LINE.match, str(error).splitlines()) if m]
    useful = [line for line in lines if not line.startswith(("ray.", "TrainingFailedError", "RayTaskError"))]
    chosen = (useful or lines or [str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__])
    return chosen[-1][:300]


def trial_record(model: str, result: Result, sampled_keys: list[str], epochs: int, resources: dict[str, float],
                 times: dict[str, str] | None = None) -> TrialRecord:
    """One trial as trials.json stores it; TIMES are the driver's start and end stamps when it saw them."""
    frame = result.metrics_dataframe
    history: list[Check] = []
    if frame is not None and "val_accuracy" in frame:
        keep = [k for k in HISTORY_KEYS if k in frame.columns]
        history = [Check(**{k: finite_or_none(row[k]) for k in keep})  # type: ignore[typeddict-item]
                   for row in frame[keep].to_dict("records")]
    accuracies = [h["val_accuracy"] for h in history if h.get("val_accuracy") is not None]
    # Epochs completed, a fraction when ASHA stopped the trial between two checks within an epoch.
    epochs_run = max((h.get("epoch") or 0 for h in history), default=0)
    status = "failed" if result.error else ("ok" if epochs_run >= epochs else "stopped")
    when = times if times and "started_at" in times and "finished_at" in times else reported_times(result)
    first_step = (result.metrics or {}).get("first_step_at")
    return TrialRecord(
        model=model,
        trial_id=trial_id(result),
        status=status,
        error=short_reason(result.error),
        config={k: result.config.get(k) for k in sampled_keys if k in (result.config or {})},
        val_accuracy=max(accuracies) if accuracies else None,
        epochs_run=epochs_run,
        history=history,
        started_at=when["started_at"],
        finished_at=when["finished_at"],
        startup_s=seconds_between(when["started_at"], first_step),
        resources=dict(resources),
    )


def seconds_between(start: str | None, end: str | None) -> float | None:
    """From a trial's start (the driver's clock) to its first training step (the trial's): its start-up."""
    start_time, end_time = parse_time(start), parse_time(end)
    if not start_time or not end_time:
        return None
    return round((end_time - start_time).total_seconds(), 2)


def reported_times(result: Result) -> dict[str, str | None]:
    """Start and end from the trial's own last report, for trials that ran before a resume: the end is exact,
    the start leaves out the seconds spent starting workers before the first step."""
    metrics = result.metrics or {}
    end, total = metrics.get("timestamp"), metrics.get("time_total_s")
    if end is None or total is None:
        return {"started_at": None, "finished_at": None}
    return {"started_at": datetime.fromtimestamp(end - total, UTC).isoformat(),
            "finished_at": datetime.fromtimestamp(end, UTC).isoformat()}


def trial_id(result: Result) -> str:
    metrics = result.metrics or {}
    if metrics.get("trial_id"):
        return str(metrics["trial_id"])
    return str(result.path).rstrip("/").rsplit("/", 1)[-1]


def best_trial(records: list[TrialRecord], budget: float | None = None) -> TrialRecord | None:
    """Highest validation accuracy reached at any epoch, among trials that did not fail; with a BUDGET, among
    those whose cost is within it when any is (else among all: `why_chosen` says so)."""
    candidates = [r for r in records if r.status != "failed" and r.val_accuracy is not None]
    within = [r for r in candidates if budget is not None and r.cost is not None and r.cost <= budget]
    pool = within or candidates
    return max(pool, key=lambda r: r.val_accuracy) if pool else None


def why_chosen(best: TrialRecord, cost: str | None, budget: float | None) -> str:
    """Why BEST is the configuration retrained, in words for the report."""
    if budget is None or cost is None:
        return "the most accurate"
    if best.cost is not None and best.cost <= budget:
        return f"the most accurate within {cost} <= {budget:g}"
    return f"the most accurate: no trial was within {cost} <= {budget:g}"
