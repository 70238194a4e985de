"""Sweep against sweep (`python -m jobs.report --compare SWEEP_A SWEEP_B`): one page with, per architecture, each
sweep's best configuration, test accuracy with its 95% bootstrap interval and cost; McNemar's test between the two
retrains of that architecture on the same test images; and what differed between the sweeps (preset, spaces,
search, objective, seeds, code). For example quick against full, or random against Optuna search."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jobs.engine.atomic import write_text_atomically
from jobs.engine.finite import is_finite
from tune.analysis.comparison import compare, fmt_config
from tune.analysis.results import SweepResults, load_results
from tune.analysis.row import ComparisonRow
from tune.analysis.significance import N_RESAMPLES, bootstrap_accuracy, matched_mcnemar
from tune.report.page import PAGE
from tune.report.predictions import Predictions, correctness, sweep_predictions

# What makes two sweeps different experiments, as sweep.json records it.
DIFFERENCES = ("preset", "search", "objective", "budget", "samples", "seeds", "search_seed", "overrides", "spaces",
               "code")


@dataclass(frozen=True)
class Side:
    """One sweep's retrain of an architecture, as the page shows it."""

    config: str
    accuracy: str  # mean over seeds with its 95% interval
    train_s: str
    cost: str


@dataclass(frozen=True)
class ArchitectureRow:
    model: str
    a: Side
    b: Side
    test: str  # McNemar's verdict, or why there is none


@dataclass(frozen=True)
class SweepsCompared:
    """What compare.html.j2 lays out."""

    a: str
    b: str
    rows: list[ArchitectureRow]
    differences: list[tuple[str, str, str]]  # (what, in A, in B)
    n_resamples: int


def side(results: SweepResults, rows: dict[str, ComparisonRow], model: str, seeds: dict[int, Predictions],
         n_resamples: int) -> Side:
    """MODEL's retrain in one sweep (RESULTS, its comparison ROWS by model), its accuracy interval over SEEDS."""
    if model not in results.models:
        return Side("—", "not in this sweep", "—", "—")
    row = rows.get(model)
    if row is None or not row.ok:
        return Side("—", f"not trained{': ' + row.reason if row and row.reason else ''}", "—", "—")
    accuracy = f"{row.test_accuracy:.2%}" if is_finite(row.test_accuracy) else "—"
    if seeds:
        interval = bootstrap_accuracy(correctness(seeds), n_resamples)
        accuracy = f"{interval.estimate:.2%} [{interval.low:.2%}, {interval.high:.2%}]"
    cost = row.value("cost_usd")
    return Side(fmt_config(row.best_config), accuracy,
                f"{row.train_time_s:,.1f} s" if is_finite(row.train_time_s) else "—",
                f"${cost:,.4f}" if is_finite(cost) else "—")


def mcnemar_text(a: dict[int, Predictions], b: dict[int, Predictions]) -> str:
    """McNemar's test of the two retrains, pooled over the seeds both have, on the same test images; or why not."""
    if not a or not b:
        return "no per-image predictions in one of the sweeps"
    shared = sorted(set(a) & set(b))
    if not shared:
        return "no seed in common"
    if any(len(a[s].labels) != len(b[s].labels) or not np.array_equal(a[s].labels, b[s].labels) for s in shared):
        return "not on the same test images (another test_limit): not comparable image by image"
    test = matched_mcnemar(correctness(a), correctness(b)).pooled
    verdict = "differ" if test.p_value < 0.05 else "do not differ detectably"
    return (f"p = {test.p_value:.3g} ({test.method}; A right and B wrong on {test.b}, the reverse on {test.c}, of "
            f"{test.n:,} image pairs over seed{'s' if len(shared) > 1 else ''} "
            f"{', '.join(map(str, shared))}): they {verdict} at 5%")


def differences(a: SweepResults, b: SweepResults) -> list[tuple[str, str, str]]:
    out = []
    for key in DIFFERENCES:
        left, right = getattr(a.sweep, key), getattr(b.sweep, key)
        if left != right:
            out.append((key, str(left) if left not in (None, [], {}) else "—", str(right) if right not in (None, [], {})
                        else "—"))
    models_a, models_b = set(a.models), set(b.models)
    if models_a != models_b:
        out.append(("models", ", ".join(a.models), ", ".join(b.models)))
    return out


def compare_sweeps(a: Path, b: Path, n_resamples: int = N_RESAMPLES) -> SweepsCompared:
    """The page's content for the sweep folders A and B. Raises UsageError as load_results does."""
    results_a, results_b = load_results(a), load_results(b)
    predictions_a = sweep_predictions(results_a.output, results_a.finals).runs
    predictions_b = sweep_predictions(results_b.output, results_b.finals).runs
    models = list(dict.fromkeys([*results_a.models, *results_b.models]))
    # Each sweep's comparison once (its costs and rows), not once per architecture.
    rows_a = {row.model: row for row in compare(results_a).rows}
    rows_b = {row.model: row for row in compare(results_b).rows}
    rows = [ArchitectureRow(model, side(results_a, rows_a, model, predictions_a.get(model) or {}, n_resamples),
                            side(results_b, rows_b, model, predictions_b.get(model) or {}, n_resamples),
                            mcnemar_text(predictions_a.get(model) or {}, predictions_b.get(model) or {})
                            if model in results_a.models and model in results_b.models else "in one sweep only")
            for model in models]
    return SweepsCompared(results_a.sweep.name or results_a.output.name, results_b.sweep.name or results_b.output.name,
                          rows, differences(results_a, results_b), n_resamples)


def write_sweep_comparison(a: Path, b: Path, out: Path | None = None, n_resamples: int = N_RESAMPLES) -> Path:
    """compare.html.j2 rendered for A against B, written whole to OUT (default: A's folder,
    compare-<B's name>.html); returns its path."""
    page = compare_sweeps(a, b, n_resamples)
    path = out or Path(a) / f"compare-{page.b}.html"
    write_text_atomically(path, PAGE.get_template("compare.html.j2").render(data=page))
    return path
