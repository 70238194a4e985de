"""The comparison's cost columns, per architecture, from a sweep's stored records (trains nothing).

Appended to tune/analysis/comparison.py's DERIVED, so they reach comparison.csv|json and the report's "What it costs"
section (tune/report/cost.py). tune/analysis/cost.py does the arithmetic; this module picks the records and the prices:

  - `cost_usd` (search trials + retrains), `search_cost_usd`, `retrain_cost_usd` (mean per retrain), US dollars at the
  sweep's prices; `cpu_s`, `gpu_s`: resource-seconds held by the search and the retrains (wall time from start to end ×
  the run's share, so what a cloud bill would charge). None for a model none of whose records is timed. -
  `time_to_98_s`, `time_to_99_s`, `time_to_995_s`: training seconds until the validation accuracy first reached 98%,
  99%, 99.5% (an upper bound, one epoch's resolution: tune/analysis/cost.py `time_to_targets`), from the best search
  trial's history (the chosen configuration, on held-out validation data), else from the first retrain's, which trains
  on train+validation so its validation accuracy is optimistic (`timed_history` says which was used). A detector
  (history with `map_50`) gets `time_to_map50_50_s`, `..._70_s`, `..._90_s` instead: seconds until its validation
  mAP@0.5 first reached 0.5, 0.7, 0.9. - `cost_to_99_usd`: dollars of holding that run's resources for `time_to_99_s`
  (training seconds only).

Prices: the sweep's `--price` as recorded in sweep.json (`prices`), which a report's `--price` overrides; {} means
tune/analysis/cost.py's DEFAULT_PRICES (a dated public list price, not a quote).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jobs.engine.errors import UsageError
from jobs.engine.finite import is_finite
from tune.analysis.cost import (
    CLASSIFICATION_TARGETS,
    DEFAULT_PRICES,
    DETECTION_TARGETS,
    Prices,
    cost_to_reach,
    field_of,
    parse_prices,
    sweep_costs,
    time_to_targets,
    training_clock,
)
from tune.analysis.results import SweepResults
from tune.sweep.record import Sweep
from tune.sweep.resource_usage import parse_time
from tune.sweep.trials import best_trial

BEST_TRIAL, FIRST_RETRAIN = "best trial", "first retrain"


def _percent(target: float) -> str:
    return f"{target * 100:g}".replace(".", "")


TIME_COLUMNS = {target: f"time_to_{_percent(target)}_s" for target in CLASSIFICATION_TARGETS}
MAP_TIME_COLUMNS = {target: f"time_to_map50_{_percent(target)}_s" for target in DETECTION_TARGETS}
COST_COLUMNS = ("cost_usd", "search_cost_usd", "retrain_cost_usd", "cpu_s", "gpu_s", *TIME_COLUMNS.values(),
                *MAP_TIME_COLUMNS.values(), "cost_to_99_usd")


@dataclass
class TimedHistory:
    """The per-epoch history the time-to-target columns are read from, and where it comes from."""

    history: list[dict[str, Any]] = field(default_factory=list)
    source: str | None = None  # BEST_TRIAL, FIRST_RETRAIN, or None (no history at all)
    metric: str = "val_accuracy"  # "map_50" for a detector
    resources: dict[str, float] = field(default_factory=dict)  # that run's share, e.g. {"CPU": 1.0, "GPU": 0.25}

    @property
    def detection(self) -> bool:
        return self.metric == "map_50"

    @property
    def targets(self) -> tuple[float, ...]:
        return DETECTION_TARGETS if self.detection else CLASSIFICATION_TARGETS

    def curve(self) -> list[tuple[float, float]]:
        """(cumulative training seconds, metric) after each epoch with a finite metric, in epoch order; empty when
        an epoch lacks its time (as `time_to_targets`, which would raise)."""
        try:
            return [(elapsed, float(record[self.metric])) for record, elapsed in training_clock(self.history)
                    if is_finite(record.get(self.metric))]
        except ValueError:
            return []


def timed_history(results: SweepResults, model: str) -> TimedHistory:
    """MODEL's best search trial's history (the sweep's pick, else the best trial that did not fail), else its first
    retrain's; RESULTS: tune/analysis/comparison.py SweepResults."""
    trials = [t for t in results.trials if t.model == model and t.history and t.status != "failed"]
    chosen = results.status(model).best_trial_id
    pick = next((t for t in trials if t.trial_id == chosen), None) or best_trial(trials)
    if pick is None and trials:
        pick = trials[0]
    if pick is not None:
        history, source, resources = pick.history, BEST_TRIAL, pick.resources
    else:
        finals = [run for run in results.finals.get(model, []) if run.history]
        if not finals:
            return TimedHistory()
        history, source, resources = finals[0].history, FIRST_RETRAIN, finals[0].resources
    metric = "map_50" if any(is_finite(h.get("map_50")) for h in history) else "val_accuracy"
    return TimedHistory(list(history), source, metric, dict(resources or {}))


def cost_columns(results: SweepResults) -> dict[str, dict[str, Any]]:
    """{model: {column: value}} for COST_COLUMNS; RESULTS: tune/analysis/comparison.py SweepResults."""
    prices = prices_of(results.sweep)
    retrains = [run for model in results.models for run in results.finals.get(model, [])]
    costs = sweep_costs(results.trials, retrains, prices)
    out: dict[str, dict[str, Any]] = {}
    for model in results.models:
        row: dict[str, Any] = dict.fromkeys(COST_COLUMNS)
        trials = [t for t in results.trials if t.model == model]
        runs = results.finals.get(model, [])
        spent = costs["by_model"].get(model)
        if spent and (_timed(trials) or _timed(runs)):
            row.update(cost_usd=spent["total_usd"], cpu_s=spent["cpu_s"], gpu_s=spent["gpu_s"],
                       search_cost_usd=spent["search_usd"] if _timed(trials) else None)
            each = [r["cost_usd"] for r, run in zip(costs["retrains"], retrains, strict=True)
                    if r["model"] == model and _timed([run])]
            row["retrain_cost_usd"] = sum(each) / len(each) if each else None
        timed = timed_history(results, model)
        row.update(time_columns(timed))
        if not timed.detection and timed.resources:
            row["cost_to_99_usd"] = cost_to_reach(row[TIME_COLUMNS[0.99]], timed.resources, prices)
        out[model] = row
    return out


def time_columns(timed: TimedHistory) -> dict[str, float | None]:
    """The time-to-target columns of one history: seconds or None (not reached, or an epoch without its time)."""
    names = MAP_TIME_COLUMNS if timed.detection else TIME_COLUMNS
    try:
        reached = time_to_targets(timed.history, timed.targets, timed.metric)
    except ValueError:
        reached = {}
    return {names[target]: reached.get(target) for target in timed.targets}


def prices_of(sweep: Sweep) -> Prices:
    """The prices sweep.json records (`--price` of the sweep, or of the report that overrides it), else the
    defaults. A recorded value that is not a finite, non-negative number is a UsageError."""
    recorded = getattr(sweep, "prices", None) or {}
    if not isinstance(recorded, dict):
        raise UsageError(f"sweep.json: prices must be an object such as {DEFAULT_PRICES.as_dict()}, got {recorded!r}")
    values = {}
    for key in ("cpu_hour", "gpu_hour"):
        value = recorded.get(key, getattr(DEFAULT_PRICES, key))
        if not is_finite(value) or value < 0:
            raise UsageError(f"sweep.json: prices.{key} must be a finite, non-negative number, got {value!r}")
        values[key] = float(value)
    if not recorded:
        return DEFAULT_PRICES
    return Prices(**values, source=str(recorded.get("source") or "sweep.json"))


def price_flag(text: str | None) -> Prices | None:
    """A command's `--price` text (tune/analysis/cost.py `parse_prices`), None when the flag was not given; a bad one is
    a UsageError (one `error:` line, exit 2)."""
    if text is None:
        return None
    try:
        return parse_prices(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _timed(runs: Sequence[Any]) -> bool:
    return any(parse_time(field_of(run, "started_at")) and parse_time(field_of(run, "finished_at")) for run in runs)
