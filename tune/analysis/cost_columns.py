"""The comparison's cost columns, per architecture, from a sweep's stored records (trains nothing).

Each ComparisonRow's `costs` (tune/analysis/row.py), so they reach comparison.csv|json and the report's "What it costs"
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

Prices: `SweepResults.prices` (tune/analysis/results.py): a report's `--price`, else the sweep's as sweep.json
records it, else tune/sweep/prices.py's DEFAULT_PRICES (a dated public list price, not a quote). Computed once, with
the sweep's totals (`SweepCosts`), for the comparison files and the report alike.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from jobs.engine.finite import is_finite
from tune.analysis.cost import (
    CLASSIFICATION_TARGETS,
    DETECTION_TARGETS,
    SweepCosts,
    cost_to_reach,
    sweep_costs,
    time_to_targets,
    training_clock,
)
from tune.analysis.results import SweepResults
from tune.sweep.resource_usage import HeldRun, held_span
from tune.sweep.trials import Check, best_trial

BEST_TRIAL, FIRST_RETRAIN = "best trial", "first retrain"


def _percent(target: float) -> str:
    return f"{target * 100:g}".replace(".", "")


TIME_COLUMNS = {target: f"time_to_{_percent(target)}_s" for target in CLASSIFICATION_TARGETS}
MAP_TIME_COLUMNS = {target: f"time_to_map50_{_percent(target)}_s" for target in DETECTION_TARGETS}


@dataclass
class TimedHistory:
    """The per-epoch history the time-to-target columns are read from, and where it comes from."""

    history: list[Check] = field(default_factory=list)
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


@dataclass
class RowCosts:
    """One architecture's cost columns (None: not timed, not reached or not a detector), and the history its times
    come from (`timed`, not a column)."""

    cost_usd: float | None = None
    search_cost_usd: float | None = None
    retrain_cost_usd: float | None = None
    cpu_s: float | None = None
    gpu_s: float | None = None
    time_to_98_s: float | None = None
    time_to_99_s: float | None = None
    time_to_995_s: float | None = None
    time_to_map50_50_s: float | None = None
    time_to_map50_70_s: float | None = None
    time_to_map50_90_s: float | None = None
    cost_to_99_usd: float | None = None
    timed: TimedHistory = field(default_factory=TimedHistory, metadata={"column": False})

    def columns(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in COST_COLUMNS}

    def time_to(self, target: float) -> float | None:
        """Seconds to TARGET of the metric its history has (validation accuracy, or a detector's mAP@0.5)."""
        names = MAP_TIME_COLUMNS if self.timed.detection else TIME_COLUMNS
        return getattr(self, names[target]) if target in names else None


COST_COLUMNS = tuple(f.name for f in dataclasses.fields(RowCosts) if f.metadata.get("column", True))


def timed_history(results: SweepResults, model: str) -> TimedHistory:
    """MODEL's best search trial's history (the sweep's pick, else the best trial that did not fail), else its first
    retrain's."""
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


def cost_columns(results: SweepResults) -> tuple[dict[str, RowCosts], SweepCosts]:
    """Each architecture's RowCosts, and what the whole sweep held and cost, at `results.prices`."""
    prices = results.prices
    retrains = [run for model in results.models for run in results.finals.get(model, [])]
    costs = sweep_costs(results.trials, retrains, prices)
    out: dict[str, RowCosts] = {}
    for model in results.models:
        row = RowCosts(timed=timed_history(results, model))
        trials = [t for t in results.trials if t.model == model]
        runs = results.finals.get(model, [])
        spent = costs.by_model.get(model)
        if spent and (_timed(trials) or _timed(runs)):
            row.cost_usd, row.cpu_s, row.gpu_s = spent.total.usd(prices), spent.total.cpu_s, spent.total.gpu_s
            row.search_cost_usd = spent.search.usd(prices) if _timed(trials) else None
            each = [r.usd for r, run in zip(costs.retrains, retrains, strict=True)
                    if r.model == model and _timed([run])]
            row.retrain_cost_usd = sum(each) / len(each) if each else None
        for name, value in time_columns(row.timed).items():
            setattr(row, name, value)
        if not row.timed.detection and row.timed.resources:
            row.cost_to_99_usd = cost_to_reach(row.time_to_99_s, row.timed.resources, prices)
        out[model] = row
    return out, costs


def time_columns(timed: TimedHistory) -> dict[str, float | None]:
    """The time-to-target columns of one history: seconds or None (not reached, or an epoch without its time)."""
    names = MAP_TIME_COLUMNS if timed.detection else TIME_COLUMNS
    try:
        reached = time_to_targets(timed.history, timed.targets, timed.metric)
    except ValueError:
        reached = {}
    return {names[target]: reached.get(target) for target in timed.targets}


def _timed(runs: list[HeldRun]) -> bool:
    return any(held_span(run) is not None for run in runs)
