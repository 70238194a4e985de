"""From a sweep's stored results to the comparison: one typed row per architecture (tune/analysis/row.py), the
sweep's costs, and the comparison files, comparison.csv, .json and .md.

Reads OUTPUT/sweep.json, OUTPUT/trials.json and OUTPUT/final/<model>/seed<k>/result.json; trains nothing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from jobs.engine.atomic import JsonValue, write_text_atomically
from jobs.engine.data.corruptions import CORRUPTIONS
from jobs.engine.finite import is_finite
from jobs.engine.run_result import Compared, RunResult, compared_fields
from tune.analysis.cost import SweepCosts
from tune.analysis.cost_columns import COST_COLUMNS, TIME_COLUMNS, cost_columns
from tune.analysis.results import SweepResults
from tune.analysis.row import COLUMNS, INT_COLUMNS, ROBUST_COLUMNS, Cell, ComparisonRow
from tune.analysis.stats import pareto_front
from tune.sweep.folder import COMPARISON_FILES
from tune.sweep.prices import Prices
from tune.sweep.record import ModelStatus


@dataclass
class Comparison:
    """The comparison of a sweep: ROWS best mean test accuracy first, failures last; COLUMNS, those of
    tune/analysis/row.py COLUMNS the files show (a column that means something only when some model has it, such as
    mAP, is left out when none has); what the whole sweep held and cost, at PRICES."""

    rows: list[ComparisonRow]
    columns: list[str]
    costs: SweepCosts
    prices: Prices
    results: SweepResults = field(repr=False)

    @property
    def ok(self) -> list[ComparisonRow]:
        """The rows of models that trained and were tested, most accurate first."""
        return [r for r in self.rows if r.ok and r.test_accuracy is not None]

    @property
    def failed(self) -> list[ComparisonRow]:
        return [r for r in self.rows if not r.ok]

    def shown(self, report: bool = False) -> list[tuple[str, Compared]]:
        """The compared fields with a heading that the files show, in RunResult's order; REPORT: those the HTML
        shows."""
        return [(name, how) for name, how in compared_fields()
                if how.heading and name in self.columns and (how.in_report or not report)]

    def frame(self) -> pd.DataFrame:
        """The rows as a table of COLUMNS: numbers as floats, counts as nullable integers (comparison.csv)."""
        table = pd.DataFrame([row.columns() for row in self.rows], columns=list(COLUMNS))
        # A column every model lacks (all failed) must still be numeric, so that it is written as one.
        numeric = [c for c in COLUMNS if c not in ("model", "status", "reason", "best_config", "pareto")]
        table[numeric] = table[numeric].apply(pd.to_numeric)
        table = table[self.columns].reset_index(drop=True)
        return table.astype({c: "Int64" for c in INT_COLUMNS if c in table})

    def to_json(self) -> list[dict[str, JsonValue]]:
        """The rows as comparison.json writes them: a missing number (or a spread of one seed) is null."""
        return [{column: _json_cell(column, cells[column]) for column in self.columns}
                for cells in (row.columns() for row in self.rows)]


def compare(results: SweepResults) -> Comparison:
    """The comparison of RESULTS, every number computed once for the files and the report."""
    costs, spent = cost_columns(results)
    robust = robustness_columns(results)
    rows = []
    for model in results.models:
        row = comparison_row(model, results.status(model), results.finals.get(model, []))
        row.robust, row.costs = robust.get(model, {}), costs[model]
        accuracy, seconds = row.test_accuracy, row.train_time_s
        if accuracy is not None and seconds is not None:
            with np.errstate(divide="ignore", invalid="ignore"):  # a zero time divides as pandas would: inf
                row.accuracy_per_train_s = float(np.float64(accuracy) / np.float64(seconds))
        rows.append(row)
    front = set(pareto_front({r.model: r.test_accuracy for r in rows if r.test_accuracy is not None},
                             {r.model: r.train_time_s for r in rows if r.train_time_s is not None}))
    for row in rows:
        row.pareto = row.model in front
    rows.sort(key=lambda r: r.model)
    rows.sort(key=lambda r: -r.test_accuracy if is_finite(r.test_accuracy) else math.inf)
    return Comparison(rows, kept_columns(rows), spent, results.prices, results)


def kept_columns(rows: list[ComparisonRow]) -> list[str]:
    """COLUMNS less those declared to mean something only when some model has them (only_if_any, robustness and cost)
    that no row has. A target nobody reached is an answer ("not reached": an empty cell), not a column to hide."""
    optional = {name for name, how in compared_fields() if how.only_if_any} | {*ROBUST_COLUMNS, *COST_COLUMNS}
    optional -= {*TIME_COLUMNS.values(), "cost_to_99_usd"}
    cells = [row.columns() for row in rows]
    return [c for c in COLUMNS if c not in optional or any(is_finite(row[c]) for row in cells)]


def comparison_row(model: str, status: ModelStatus, runs: list[RunResult]) -> ComparisonRow:
    """The ComparisonRow of one architecture: its status, then each compared field's mean over its seeds."""
    row = ComparisonRow(model=model, status=status.status or "missing", reason=status.reason, seeds=len(runs),
                        trials=status.trials, failed_trials=status.failed_trials,
                        best_val_accuracy=status.best_val_accuracy, best_config=status.best_config)
    if row.status == "ok" and not runs:
        row.status, row.reason = "failed", row.reason or f"no final/{model}/seed*/result.json was written"
    for name, how in compared_fields():
        values = pd.Series([getattr(run, name) for run in runs], dtype="float64")
        if values.notna().any():
            row.means[name] = float(values.mean())
            if how.spread:
                # Sample standard deviation: the spread a new seed would show; undefined (None) for one seed.
                row.spreads[name] = float(values.std(ddof=1)) if values.count() > 1 else None
    return row


def robustness_columns(results: SweepResults) -> dict[str, dict[str, float]]:
    """{model: {corruption: accuracy}}: the accuracy under each corruption (jobs/engine/data/corruptions.py), mean
    over seeds; the comparison's robust_<corruption> columns."""
    out: dict[str, dict[str, float]] = {}
    for model, runs in results.finals.items():
        scores = [run.robustness for run in runs if run.robustness]
        out[model] = {name: float(np.mean([s[name] for s in scores if name in s]))
                      for name in CORRUPTIONS if any(name in s for s in scores)}
    return out


def _json_cell(column: str, value: Cell) -> JsonValue:
    if isinstance(value, float) and math.isnan(value):
        return None
    return int(value) if column in INT_COLUMNS and isinstance(value, int | float) else value


# ---- display: the same strings go into comparison.md and the HTML report ----------------------------------

def fmt_accuracy(mean: float | None, std: float | None) -> str:
    if not is_finite(mean):
        return "—"
    return f"{mean * 100:.2f}% ± {std * 100:.2f}" if is_finite(std) else f"{mean * 100:.2f}%"


def fmt_number(value: float | None, digits: int = 0, unit: str = "") -> str:
    return f"{value:,.{digits}f}{unit}" if is_finite(value) else "—"


def fmt_config(config: dict[str, JsonValue] | None) -> str:
    if not config:
        return "—"
    return ", ".join(f"{k}={f'{v:.3g}' if isinstance(v, float) else v}" for k, v in config.items())


def display_rows(comparison: Comparison) -> list[dict[str, str]]:
    """Human-readable cells per row, keyed by column heading."""
    shown = comparison.shown()
    out = []
    for row in comparison.rows:
        cells = {"Model": row.model}
        for name, how in shown:
            cells[how.heading or name] = (fmt_accuracy(row.mean(name), row.std(name)) if how.percent
                                          else fmt_number(row.mean(name), how.digits, how.unit))
        cells |= {"Seeds": str(row.seeds), "Trials (failed)": _trials_cell(row),
                  "Best config": fmt_config(row.best_config),
                  "Status": "ok" if row.ok else f"{row.status}: {row.reason or 'no reason given'}"}
        out.append(cells)
    return out


def to_markdown(comparison: Comparison) -> str:
    rows = display_rows(comparison)
    if not rows:
        return "_No models in this sweep._\n"
    headings = list(rows[0])
    numeric = {h for h in headings if h not in ("Model", "Best config", "Status")}
    lines = ["| " + " | ".join(headings) + " |",
             "|" + "|".join("---:" if h in numeric else "---" for h in headings) + "|"]
    lines += ["| " + " | ".join(row[h].replace("|", "\\|") for h in headings) + " |" for row in rows]
    note = ("\nAccuracy is the mean over seeds ± the sample standard deviation; train time is the mean per "
            "seed of the final retrain of the best configuration.\n")
    return "\n".join(lines) + "\n" + note


def write_comparison(comparison: Comparison, output: Path) -> dict[str, Path]:
    paths = {ext: Path(output) / name for ext, name in COMPARISON_FILES.items()}
    flat = comparison.frame()
    # A dict in a CSV cell is written as JSON, so it can be read back rather than as Python's repr.
    flat["best_config"] = [json.dumps(c, sort_keys=True) if c else "" for c in flat["best_config"]]
    # Each file whole or not at all (jobs/engine/atomic.py): a full disk mid-write leaves the previous one.
    write_text_atomically(paths["csv"], flat.to_csv(index=False))
    write_text_atomically(paths["json"], json.dumps(comparison.to_json(), indent=1))
    write_text_atomically(paths["md"], to_markdown(comparison))
    return paths


def _trials_cell(row: ComparisonRow) -> str:
    if row.trials is None:
        return "—"
    return f"{row.trials} ({row.failed_trials or 0})"
