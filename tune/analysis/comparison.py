"""From a sweep's stored results to the comparison table: one row per architecture, written as CSV, JSON and markdown.

Reads OUTPUT/sweep.json, OUTPUT/trials.json and OUTPUT/final/<model>/seed<k>/result.json; trains nothing.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jobs.engine.atomic import write_text_atomically
from jobs.engine.data.corruptions import CORRUPTIONS
from jobs.engine.finite import is_finite
from jobs.engine.run_result import Compared, RunResult, compared_fields
from tune.analysis.cost_columns import COST_COLUMNS, TIME_COLUMNS, cost_columns
from tune.analysis.results import SweepResults
from tune.sweep.folder import COMPARISON_FILES
from tune.sweep.record import ModelStatus

# Search-side columns that come from sweep.json's status of each architecture, not from its result.json.
STATUS_COLUMNS = ("trials", "failed_trials", "best_val_accuracy", "best_config")
INT_COLUMNS = ("seeds", "params", "trials", "failed_trials")


def _comparison_row_type() -> type:
    """ComparisonRow: the model and how it ended, every compared RunResult field (mean over seeds, and its spread
    where declared), the search's side, then what the comparison derives. Declared from RunResult's metadata, so a
    new metric there is a new column here, in comparison.csv|json|md and in the report's table."""
    fields: list[tuple[str, Any, Any]] = [("model", str, dataclasses.field(default="")),
                                          ("status", str, dataclasses.field(default="missing")),
                                          ("reason", str | None, None), ("seeds", int, 0)]
    for name, how in compared_fields():
        fields.append((name, float | None, None))
        if how.spread:
            fields.append((f"{name}_std", float | None, None))
    fields += [(column, float | None, None) for derived in DERIVED for column in derived.columns]
    fields += [("trials", int | None, None), ("failed_trials", int | None, None),
               ("best_val_accuracy", float | None, None), ("best_config", dict | None, None),
               ("accuracy_per_train_s", float | None, None), ("pareto", bool, False)]
    row_type = dataclasses.make_dataclass("ComparisonRow", fields)
    row_type.__module__ = __name__  # so that it pickles and prints as tune.analysis.comparison.ComparisonRow
    return row_type


@dataclass(frozen=True)
class Derived:
    """Columns computed from the whole sweep folder (trials, prices, per-seed records), not averaged RunResult
    fields: COMPUTE returns {model: {column: value}} for the COLUMNS it declares (floats, or None)."""

    columns: tuple[str, ...]
    compute: Callable[[SweepResults], dict[str, dict[str, Any]]]


def robustness_columns(results: SweepResults) -> dict[str, dict[str, Any]]:
    """robust_<corruption>: the accuracy under each corruption, mean over seeds (jobs/engine/data/corruptions.py)."""
    out: dict[str, dict[str, Any]] = {}
    for model, runs in results.finals.items():
        scores = [run.robustness for run in runs if run.robustness]
        out[model] = {f"robust_{name}": float(np.mean([s[name] for s in scores if name in s]))
                      for name in CORRUPTIONS if any(name in s for s in scores)}
    return out


DERIVED: list[Derived] = [Derived(tuple(f"robust_{name}" for name in CORRUPTIONS), robustness_columns)]
DERIVED.append(Derived(COST_COLUMNS, cost_columns))  # what each architecture cost: tune/analysis/cost_columns.py
ComparisonRow = _comparison_row_type()
COLUMNS = tuple(f.name for f in dataclasses.fields(ComparisonRow))


def comparison_table(results: SweepResults) -> pd.DataFrame:
    """One row per architecture in sweep.json's order of models, best mean test accuracy first, failures last."""
    from tune.analysis.stats import pareto_front

    rows = [comparison_row(model, results.status(model), results.finals.get(model, [])) for model in results.models]
    for derived in DERIVED:
        values = derived.compute(results)
        for row in rows:
            for column, value in values.get(row.model, {}).items():
                setattr(row, column, value)
    table = pd.DataFrame([dataclasses.asdict(row) for row in rows], columns=list(COLUMNS))
    # A column every model lacks (all failed) must still be numeric, so sorting and division work.
    numeric = [c for c in COLUMNS if c not in ("model", "status", "reason", "best_config", "pareto")]
    table[numeric] = table[numeric].apply(pd.to_numeric)
    table["accuracy_per_train_s"] = table["test_accuracy"] / table["train_time_s"]
    front = pareto_front(dict(zip(table["model"], table["test_accuracy"], strict=True)),
                         dict(zip(table["model"], table["train_time_s"], strict=True)))
    table["pareto"] = table["model"].isin(front)
    table = table.sort_values(["test_accuracy", "model"], ascending=[False, True], na_position="last",
                              kind="stable")
    # A column declared only_if_any (mAP) means something only when some model has it.
    optional = {name for name, how in compared_fields() if how.only_if_any}
    optional |= {column for derived in DERIVED for column in derived.columns}
    # A target nobody reached is an answer ("not reached": an empty cell), not a column to hide.
    optional -= {*TIME_COLUMNS.values(), "cost_to_99_usd"}
    keep = [c for c in COLUMNS if c not in optional or table[c].notna().any()]
    table = table[keep].reset_index(drop=True)
    return table.astype({c: "Int64" for c in INT_COLUMNS if c in table})


def comparison_row(model: str, status: ModelStatus, runs: list[RunResult]) -> Any:
    """The ComparisonRow of one architecture: its status, then each compared field's mean over its seeds."""
    row = ComparisonRow(model=model, status=status.status or "missing", reason=status.reason, seeds=len(runs),
                        trials=status.trials, failed_trials=status.failed_trials,
                        best_val_accuracy=status.best_val_accuracy, best_config=status.best_config)
    if row.status == "ok" and not runs:
        row.status, row.reason = "failed", row.reason or f"no final/{model}/seed*/result.json was written"
    for name, how in compared_fields():
        values = pd.Series([getattr(run, name) for run in runs], dtype="float64")
        if values.notna().any():
            setattr(row, name, float(values.mean()))
            if how.spread:
                # Sample standard deviation: the spread a new seed would show; undefined for one seed.
                setattr(row, f"{name}_std", float(values.std(ddof=1)) if values.count() > 1 else math.nan)
    return row


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain JSON values: NaN becomes null, numpy scalars become Python ones."""
    def clean(value: Any) -> Any:
        if isinstance(value, dict | list) or value is None:
            return value
        if pd.isna(value):
            return None
        return value.item() if hasattr(value, "item") else value

    return [{k: clean(v) for k, v in row.items()} for row in table.astype(object).to_dict("records")]


# ---- display: the same strings go into comparison.md and the HTML report ----------------------------------

def fmt_accuracy(mean: float | None, std: float | None) -> str:
    if not is_finite(mean):
        return "—"
    return f"{mean * 100:.2f}% ± {std * 100:.2f}" if is_finite(std) else f"{mean * 100:.2f}%"


def fmt_number(value: float | None, digits: int = 0, unit: str = "") -> str:
    return f"{value:,.{digits}f}{unit}" if is_finite(value) else "—"


def fmt_config(config: dict[str, Any] | None) -> str:
    if not config:
        return "—"
    return ", ".join(f"{k}={f'{v:.3g}' if isinstance(v, float) else v}" for k, v in config.items())


def shown_columns(table: pd.DataFrame, report: bool = False) -> list[tuple[str, Compared]]:
    """The compared fields with a heading that TABLE has, in RunResult's order; REPORT: those the HTML shows."""
    return [(name, how) for name, how in compared_fields()
            if how.heading and name in table and (how.in_report or not report)]


def display_rows(table: pd.DataFrame) -> list[dict[str, str]]:
    """Human-readable cells per row, keyed by column heading."""
    shown = shown_columns(table)
    out = []
    for row in records(table):
        cells = {"Model": row["model"]}
        for name, how in shown:
            cells[how.heading] = (fmt_accuracy(row[name], row.get(f"{name}_std")) if how.percent
                                  else fmt_number(row[name], how.digits, how.unit))
        cells |= {"Seeds": str(row["seeds"]), "Trials (failed)": _trials_cell(row),
                  "Best config": fmt_config(row["best_config"]),
                  "Status": "ok" if row["status"] == "ok" else f"{row['status']}: {row['reason'] or 'no reason given'}"}
        out.append(cells)
    return out


def to_markdown(table: pd.DataFrame) -> str:
    rows = display_rows(table)
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


def write_comparison(table: pd.DataFrame, output: Path) -> dict[str, Path]:
    paths = {ext: Path(output) / name for ext, name in COMPARISON_FILES.items()}
    flat = table.copy()
    # A dict in a CSV cell is written as JSON, so it can be read back rather than as Python's repr.
    flat["best_config"] = [json.dumps(c, sort_keys=True) if c else "" for c in flat["best_config"]]
    # Each file whole or not at all (jobs/engine/atomic.py): a full disk mid-write leaves the previous one.
    write_text_atomically(paths["csv"], flat.to_csv(index=False))
    write_text_atomically(paths["json"], json.dumps(records(table), indent=1))
    write_text_atomically(paths["md"], to_markdown(table))
    return paths


def _trials_cell(row: dict[str, Any]) -> str:
    if row["trials"] is None:
        return "—"
    return f"{row['trials']} ({row['failed_trials'] or 0})"
