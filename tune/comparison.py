"""From a sweep's stored results to the comparison table: one row per architecture, written as CSV, JSON and markdown.

Reads OUTPUT/sweep.json, OUTPUT/trials.json and OUTPUT/final/<model>/seed<k>/result.json; trains nothing.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from jobs.engine.errors import UsageError

# Mean over seeds of these result.json numbers; the test metrics also get a spread.
MEAN_KEYS = ("test_accuracy", "test_f1_macro", "test_f1_weighted", "test_loss", "train_time_s", "wall_time_s",
             "epochs", "params", "images_per_s", "peak_memory_mb", "test_map_50", "test_map")
STD_KEYS = ("test_accuracy", "train_time_s")
COLUMNS = ("model", "status", "reason", "seeds", "test_accuracy", "test_accuracy_std", "test_f1_macro",
           "test_f1_weighted", "test_loss", "train_time_s", "train_time_s_std", "wall_time_s", "epochs", "params",
           "images_per_s", "peak_memory_mb", "test_map_50", "test_map", "trials", "failed_trials",
           "best_val_accuracy", "best_config", "accuracy_per_train_s", "pareto")


@dataclass
class SweepResults:
    output: Path
    sweep: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)
    finals: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # model -> result.json per seed, in order

    @property
    def models(self) -> list[str]:
        return list(self.sweep["models"])

    def status(self, model: str) -> dict[str, Any]:
        return self.sweep.get("status", {}).get(model) or {}


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON ({exc})") from exc


def load_results(output: Path) -> SweepResults:
    """Everything the sweep stored under OUTPUT; a missing or broken sweep.json is the user's to fix."""
    output = Path(output)
    if not output.is_dir():
        raise UsageError(f"results folder {output} does not exist")
    if not (output / "sweep.json").is_file():
        raise UsageError(f"{output} has no sweep.json; point at a sweep's output folder (make sweep writes one)")
    sweep = read_json(output / "sweep.json")
    if not isinstance(sweep, dict) or not isinstance(sweep.get("models"), list):
        raise UsageError(f"{output / 'sweep.json'} has no list of models; is it a sweep's summary?")
    trials = read_json(output / "trials.json") if (output / "trials.json").is_file() else []
    finals = {model: [read_json(path) for path in _seed_files(output / "final" / model)]
              for model in sweep["models"]}
    return SweepResults(output, sweep, trials if isinstance(trials, list) else [], finals)


def _seed_files(folder: Path) -> list[Path]:
    found = [(int(m.group(1)), p / "result.json") for p in folder.glob("seed*")
             if (m := re.fullmatch(r"seed(\d+)", p.name)) and (p / "result.json").is_file()]
    return [path for _, path in sorted(found)]


def comparison_table(results: SweepResults) -> pd.DataFrame:
    """One row per architecture in sweep.json's order of models, best mean test accuracy first, failures last."""
    from tune.stats import pareto_front

    rows = [_row(model, results.status(model), results.finals.get(model, [])) for model in results.models]
    table = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in table:
            table[column] = None
    # A column every model lacks (all failed) must still be numeric, so sorting and division work.
    numeric = [c for c in COLUMNS if c not in ("model", "status", "reason", "best_config", "pareto")]
    table[numeric] = table[numeric].apply(pd.to_numeric)
    table["accuracy_per_train_s"] = table["test_accuracy"] / table["train_time_s"]
    front = pareto_front(dict(zip(table["model"], table["test_accuracy"], strict=True)),
                         dict(zip(table["model"], table["train_time_s"], strict=True)))
    table["pareto"] = table["model"].isin(front)
    table = table.sort_values(["test_accuracy", "model"], ascending=[False, True], na_position="last",
                              kind="stable")
    # mAP columns only mean something when a detection model ran.
    keep = [c for c in COLUMNS if not c.startswith("test_map") or table[c].notna().any()]
    table = table[keep].reset_index(drop=True)
    return table.astype({c: "Int64" for c in ("seeds", "params", "trials", "failed_trials")})


def _row(model: str, status: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {"model": model, "status": status.get("status") or "missing",
                           "reason": status.get("reason"), "seeds": len(runs),
                           "trials": status.get("trials"), "failed_trials": status.get("failed_trials"),
                           "best_val_accuracy": status.get("best_val_accuracy"),
                           "best_config": status.get("best_config")}
    if row["status"] == "ok" and not runs:
        row.update(status="failed", reason=row["reason"] or f"no final/{model}/seed*/result.json was written")
    for key in MEAN_KEYS:
        values = pd.Series([run.get(key) for run in runs], dtype="float64")
        if values.notna().any():
            row[key] = float(values.mean())
            if key in STD_KEYS:
                # Sample standard deviation: the spread a new seed would show; undefined for one seed.
                row[f"{key}_std"] = float(values.std(ddof=1)) if values.count() > 1 else math.nan
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
    if not _num(mean):
        return "—"
    return f"{mean * 100:.2f}% ± {std * 100:.2f}" if _num(std) else f"{mean * 100:.2f}%"


def fmt_number(value: float | None, digits: int = 0, unit: str = "") -> str:
    return f"{value:,.{digits}f}{unit}" if _num(value) else "—"


def fmt_config(config: dict[str, Any] | None) -> str:
    if not config:
        return "—"
    return ", ".join(f"{k}={f'{v:.3g}' if isinstance(v, float) else v}" for k, v in config.items())


def display_rows(table: pd.DataFrame) -> list[dict[str, str]]:
    """Human-readable cells per row, keyed by column heading."""
    has_map = "test_map_50" in table
    out = []
    for row in records(table):
        cells = {"Model": row["model"], "Test accuracy": fmt_accuracy(row["test_accuracy"], row["test_accuracy_std"]),
                 "Macro-F1": fmt_number(row["test_f1_macro"], 4), "Weighted-F1": fmt_number(row["test_f1_weighted"], 4),
                 "Test loss": fmt_number(row["test_loss"], 4)}
        if has_map:
            cells |= {"mAP@.5": fmt_number(row.get("test_map_50"), 3), "mAP": fmt_number(row.get("test_map"), 3)}
        cells |= {"Train time": fmt_number(row["train_time_s"], 1, " s"), "Epochs": fmt_number(row["epochs"]),
                  "Params": fmt_number(row["params"]), "Images/s": fmt_number(row["images_per_s"]),
                  "Peak memory": fmt_number(row["peak_memory_mb"], 0, " MB"), "Seeds": str(row["seeds"]),
                  "Trials (failed)": _trials_cell(row), "Best config": fmt_config(row["best_config"]),
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
    paths = {ext: Path(output) / f"comparison.{ext}" for ext in ("csv", "json", "md")}
    flat = table.copy()
    # A dict in a CSV cell is written as JSON, so it can be read back rather than as Python's repr.
    flat["best_config"] = [json.dumps(c, sort_keys=True) if c else "" for c in flat["best_config"]]
    flat.to_csv(paths["csv"], index=False)
    paths["json"].write_text(json.dumps(records(table), indent=1))
    paths["md"].write_text(to_markdown(table))
    return paths


def _trials_cell(row: dict[str, Any]) -> str:
    if row["trials"] is None:
        return "—"
    return f"{row['trials']} ({row['failed_trials'] or 0})"


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
