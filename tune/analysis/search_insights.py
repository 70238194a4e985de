"""What a search learned: hyperparameter importance, best values at the edge of their range, what the search cost
and what ASHA's early stops saved, and a parallel-coordinates view of every trial.

Inputs are trial records (tune/sweep/trials.py TrialRecord: model, trial_id, status "ok", "stopped" or "failed",
config, val_accuracy or None, started_at / finished_at and resources, whose held seconds are
tune/sweep/resource_usage.py's `held_seconds`), and search spaces as in `tune.sweep.spaces` ({key: {kind: args,
optional "grid": [...]}}, kind one of choice, uniform, loguniform, randint with randint's high exclusive).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tune.sweep.resource_usage import held_seconds, held_span
from tune.sweep.trials import TrialRecord

EDGE_MARGIN = 0.05  # a best value within 5% of its range's width (log width for loguniform) of an end is "at" it
COMPLETED = ("ok",)  # statuses whose val_accuracy counts for importance: Optuna's COMPLETE; "stopped" is PRUNED
RESOURCES = ("CPU", "GPU")


@dataclass(frozen=True)
class Importance:
    """Hyperparameter importance for one architecture: {key: share}, shares summing to 1, most important first."""

    values: dict[str, float]
    method: str | None  # "fanova", "ped-anova", or None when there are no values
    n_trials: int  # completed trials used
    reason: str | None = None  # why values is empty, or a caveat about few trials


@dataclass(frozen=True)
class EdgeFlag:
    """A best-trial value at an end of its search range, with the sentence the report shows."""

    key: str
    value: Any
    edge: str  # "top" or "bottom"
    sentence: str


@dataclass(frozen=True)
class Budget:
    """Resource-seconds one architecture's trials held: CPU-seconds and GPU-seconds (resource units x seconds)."""

    cpu_s: float
    gpu_s: float
    trials: int
    untimed: int  # trials without both start and end times (an older sweep's), counted as 0
    by_status: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Savings:
    """What ASHA's early stops saved one architecture, in resource-seconds of RESOURCE ("GPU" when a trial held
    one, else "CPU"): what the stopped trials held, and an estimate of what they would have held running to the
    end, each at the finished trials' mean duration (None without a timed finished trial)."""

    stopped: int
    finished: int  # timed trials that ran every epoch: the estimate's base
    resource: str
    used_s: float
    to_the_end_s: float | None
    untimed: int  # stopped trials without both times, left out of both sums

    @property
    def saved_s(self) -> float | None:
        return None if self.to_the_end_s is None else max(self.to_the_end_s - self.used_s, 0.0)


def _kind(entry: Mapping[str, Any]) -> tuple[str, Any]:
    kind = next(k for k in entry if k != "grid")
    return kind, entry[kind]


def _of_model(records: Iterable[TrialRecord], model: str | None) -> list[TrialRecord]:
    return [r for r in records if model is None or r.model == model]




def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _distribution(entry: Mapping[str, Any], observed: Sequence[Any]) -> Any:
    """The Optuna distribution of a space entry, widened to hold every observed value (a grid may lie outside the
    range, and `create_trial` refuses a value its distribution does not contain)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    kind, args = _kind(entry)
    if kind == "choice" or not all(is_number(v) for v in observed):
        choices = list(args) if kind == "choice" else []
        choices += [v for v in dict.fromkeys(observed) if v not in choices]
        return CategoricalDistribution(choices)
    low, high = min(args[0], *observed), max(args[1] - (kind == "randint"), *observed)
    if kind == "randint":
        return IntDistribution(int(low), int(high))
    return FloatDistribution(float(low), float(high), log=kind == "loguniform")


def param_importance(records: Iterable[TrialRecord], space: Mapping[str, Mapping[str, Any]],
                     model: str | None = None, seed: int = 0, statuses: Sequence[str] = COMPLETED) -> Importance:
    """Importance of each sampled key for val_accuracy among MODEL's completed trials, by Optuna's evaluators.

    Builds an in-memory Optuna study from the records (one `optuna.trial.create_trial` per trial, with the
    distributions of SPACE) and asks `optuna.importance.get_param_importances` with fANOVA (Hutter, Hoos &
    Leyton-Brown 2014, "An efficient approach for assessing hyperparameter importance", ICML), seeded with SEED
    so the same records give the same numbers. When fANOVA's forest finds no variance to split (it raises
    RuntimeError), PED-ANOVA (Watanabe et al. 2023, IJCAI) is used instead. Only keys that take at least two
    values among the trials count; trials missing one of them are left out. Trials whose status is not in
    STATUSES are left out: by default only "ok", as Optuna's own importance leaves out pruned trials, since an
    early-stopped trial's accuracy is not comparable with a finished one's. MODEL None takes every record.

    Returns empty values with a reason when fewer than 2 trials completed, no key varies, or every trial scored
    the same; with fewer than 10 trials the reason field carries a caveat. Never raises for thin data.
    """
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator, get_param_importances

    done = [((r.config or {}), float(r.val_accuracy)) for r in _of_model(records, model)
            if r.status in statuses and is_number(r.val_accuracy)]
    if len(done) < 2:
        return Importance({}, None, len(done), f"{len(done)} completed trial(s); importance needs at least 2")
    keys = [k for k in space if len({repr(config[k]) for config, _ in done if k in config}) >= 2]
    if not keys:
        return Importance({}, None, len(done), "no sampled key took more than one value")
    done = [(config, score) for config, score in done if all(k in config for k in keys)]
    if len({score for _, score in done}) < 2:
        return Importance({}, None, len(done), "every trial reached the same val_accuracy")
    distributions = {k: _distribution(space[k], [config[k] for config, _ in done]) for k in keys}
    trials = [optuna.trial.create_trial(params={k: config[k] for k in keys}, distributions=distributions,
                                        value=score) for config, score in done]
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)  # no "A new study created in memory" line per architecture
    try:
        study = optuna.create_study(direction="maximize")
        study.add_trials(trials)
        try:
            values, method = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed)), "fanova"
        except RuntimeError:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PED-ANOVA is marked experimental in Optuna
                values = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator())
            method = "ped-anova"
    finally:
        optuna.logging.set_verbosity(verbosity)
    ordered = dict(sorted(((k, float(v)) for k, v in values.items()), key=lambda kv: (-kv[1], kv[0])))
    caveat = f"only {len(done)} trials: a rough ranking" if len(done) < 10 else None
    return Importance(ordered, method, len(done), caveat)


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _position(kind: str, low: float, high: float, value: float) -> float:
    """Where VALUE lies between LOW (0) and HIGH (1): in log space for loguniform, linear otherwise."""
    if kind == "loguniform":
        return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    return (value - low) / (high - low)


def edge_flags(config: Mapping[str, Any], space: Mapping[str, Mapping[str, Any]], margin: float = EDGE_MARGIN,
               use_grid: bool = False) -> list[EdgeFlag]:
    """Keys of CONFIG (the best trial's) whose value sits at an end of its range in SPACE: the search may have
    stopped short of a better value beyond that end.

    Ranges (uniform, loguniform, randint): the value's position in the range, linear or (loguniform) in log
    space, is within MARGIN (a fraction of the width) of 0 or 1. randint's top is high - 1 (high is exclusive);
    for a small integer range that means the end value itself. Choices: the value is the smallest or largest of
    an all-numeric choice list of at least 3 distinct values (with two, every value is an end and flags say
    nothing; bools and strings have no order). USE_GRID: judge against the entry's grid list, as a choice list,
    where it has one (for a grid search, which only tried those). Keys missing from CONFIG or non-numeric values
    are skipped. Raises nothing for odd entries: a space is checked by `tune.sweep.spaces.check_space`.
    """
    flags = []
    for key, entry in space.items():
        value = config.get(key)
        if not is_number(value):
            continue
        kind, args = _kind(entry)
        if use_grid and "grid" in entry:
            kind, args = "choice", entry["grid"]
        if kind == "choice":
            ordered = sorted(set(args)) if all(is_number(v) for v in args) else []
            if len(ordered) < 3 or value not in (ordered[0], ordered[-1]):
                continue
            top = value == ordered[-1]
            where, advice = ("largest", "add larger values") if top else ("smallest", "add smaller values")
            listed = ", ".join(_fmt(v) for v in ordered)
            sentence = f"{key} {_fmt(value)} is the {where} of its choices [{listed}]: {advice}"
        else:
            low, high = args[0], args[1] - 1 if kind == "randint" else args[1]
            if high <= low or (kind == "loguniform" and value <= 0):
                continue
            position = _position(kind, low, high, value)
            if margin < position < 1 - margin:
                continue
            top = position >= 1 - margin
            sentence = (f"{key} {_fmt(value)} is the {'top' if top else 'bottom'} of its range "
                        f"[{_fmt(low)}, {_fmt(high)}]: widen it")
        flags.append(EdgeFlag(key, value, "top" if top else "bottom", sentence))
    return flags


def best_edge_flags(records: Iterable[TrialRecord], space: Mapping[str, Mapping[str, Any]],
                    model: str | None = None, margin: float = EDGE_MARGIN, use_grid: bool = False) -> list[EdgeFlag]:
    """`edge_flags` of MODEL's best trial (highest val_accuracy among trials that did not fail); [] without one."""
    scored = [r for r in _of_model(records, model)
              if r.status != "failed" and is_number(r.val_accuracy)]
    best = max(scored, key=lambda r: r.val_accuracy, default=None)  # the first of equals, as max does
    return edge_flags((best.config or {}), space, margin, use_grid) if best is not None else []


def search_budget(records: Iterable[TrialRecord], model: str | None = None) -> Budget:
    """Resource-seconds MODEL's trials held: (finished_at - started_at) x resources["CPU"] (and "GPU"), summed.

    Every trial counts, failed and stopped ones included: they held the resources too. A trial without both
    times (or with unreadable ones) adds 0 and is counted in `untimed`, as `tune.sweep.resource_usage` counts them.
    """
    chosen = _of_model(records, model)
    by_status: dict[str, int] = {}
    for r in chosen:
        by_status[str(r.status)] = by_status.get(str(r.status), 0) + 1
    untimed = sum(1 for r in chosen if held_span(r) is None)
    cpu, gpu = (sum(held_seconds(r, resource) for r in chosen) for resource in RESOURCES)
    return Budget(round(cpu, 3), round(gpu, 3), len(chosen), untimed, dict(sorted(by_status.items())))


def asha_savings(records: Iterable[TrialRecord], model: str | None = None) -> Savings:
    """Resource-seconds MODEL's trials stopped early ("stopped") held, against an estimate of what they would
    have held running every epoch: the mean wall seconds of its finished ("ok") trials, times each stopped
    trial's own resource amount (never less than what it did hold). An estimate: a trial's epochs need not all
    take the same time, and a stopped trial's configuration may be faster or slower than the finished ones."""
    chosen = _of_model(records, model)
    resource = "GPU" if any(float((r.resources or {}).get("GPU") or 0) > 0 for r in chosen) else "CPU"
    finished = [seconds for r in chosen if r.status == "ok" and (seconds := held_span(r)) is not None]
    stopped = [r for r in chosen if r.status == "stopped"]
    timed = [r for r in stopped if held_span(r) is not None]
    used = sum(held_seconds(r, resource) for r in timed)
    to_the_end = None
    if finished:
        mean = sum(finished) / len(finished)
        to_the_end = sum(max(held_seconds(r, resource),
                             mean * float((r.resources or {}).get(resource) or 0.0)) for r in timed)
    return Savings(len(stopped), len(finished), resource, round(used, 3),
                   None if to_the_end is None else round(to_the_end, 3), len(stopped) - len(timed))


def parallel_coordinates(records: Iterable[TrialRecord], space: Mapping[str, Mapping[str, Any]],
                         model: str | None = None) -> dict[str, Any]:
    """Data for a parallel-coordinates figure: one axis per sampled key plus val_accuracy, one line per trial.

    Returns {"axes": [axis], "lines": [line]}. An axis is {"key", "scale": "linear" | "log" | "category",
    "low", "high", "ticks": [position], "labels": [str]}: numeric keys span their search range (widened to any
    value a trial used outside it), log-scaled for loguniform; a choice key puts its values, in the space's
    order (then any others seen), at evenly spaced positions; the last axis is val_accuracy over the observed
    range. A line is {"trial_id", "status", "val_accuracy", "values": [raw value], "positions": [0..1 or None]}:
    positions are each value's place on its axis, 0 bottom and 1 top, None where a trial lacks the key or
    (val_accuracy) failed. Keys no trial of MODEL has are left out.
    """
    chosen = _of_model(records, model)
    axes: list[dict[str, Any]] = []
    placers = []
    for key, entry in space.items():
        seen = [(r.config or {})[key] for r in chosen if key in (r.config or {})]
        if not seen:
            continue
        kind, args = _kind(entry)
        if kind == "choice" or not all(is_number(v) for v in seen):
            values = list(args) if kind == "choice" else []
            values += [v for v in dict.fromkeys(seen) if v not in values]
            step = 1 / (len(values) - 1) if len(values) > 1 else 0.0
            ticks = [0.5 if len(values) == 1 else i * step for i in range(len(values))]
            axes.append({"key": key, "scale": "category", "low": None, "high": None, "ticks": ticks,
                         "labels": [_fmt(v) for v in values]})
            placers.append(lambda v, values=values, ticks=ticks: ticks[values.index(v)] if v in values else None)
            continue
        scale = "log" if kind == "loguniform" else "linear"
        low, high = min(args[0], *seen), max(args[1] - (kind == "randint"), *seen)
        sub = "loguniform" if scale == "log" else "uniform"
        axes.append({"key": key, "scale": scale, "low": low, "high": high, "ticks": [0.0, 1.0],
                     "labels": [_fmt(low), _fmt(high)]})
        placers.append(lambda v, sub=sub, low=low, high=high:
                       (_position(sub, low, high, v) if high > low else 0.5) if is_number(v) else None)
    scores = [r.val_accuracy for r in chosen if is_number(r.val_accuracy)]
    low, high = (min(scores), max(scores)) if scores else (0.0, 1.0)
    one = high <= low  # one score (or none): one tick in the middle, where its lines cross the axis
    axes.append({"key": "val_accuracy", "scale": "linear", "low": low, "high": high,
                 "ticks": [0.5] if one else [0.0, 1.0],
                 "labels": [_fmt(float(low))] if one else [_fmt(float(low)), _fmt(float(high))]})
    placers.append(lambda v, low=low, high=high:
                   ((v - low) / (high - low) if high > low else 0.5) if is_number(v) else None)
    lines = []
    for r in chosen:
        config = (r.config or {})
        values = [config.get(a["key"]) for a in axes[:-1]] + [r.val_accuracy]
        positions = [None if v is None else place(v) for v, place in zip(values, placers, strict=True)]
        lines.append({"trial_id": r.trial_id, "status": r.status,
                      "val_accuracy": r.val_accuracy, "values": values, "positions": positions})
    return {"axes": axes, "lines": lines}
