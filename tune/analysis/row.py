"""One architecture's row of the comparison: the declared type the comparison files and every part of the report
read (`ComparisonRow`), and its columns in comparison.csv|json's order.

A compared RunResult field (jobs/engine/run_result.py `compared_fields`) is a key of the row's `means` (and of
`spreads` where its metadata asks for the spread over seeds), so a new metric there is a new column here, in
comparison.csv|json|md and in the report's table, with no edit to this file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jobs.engine.atomic import JsonValue
from jobs.engine.data.corruptions import CORRUPTIONS
from jobs.engine.finite import is_finite
from jobs.engine.run_result import compared_fields
from tune.analysis.cost_columns import COST_COLUMNS, RowCosts

Cell = str | int | float | bool | dict[str, JsonValue] | None  # one value of comparison.csv|json
STATUS_COLUMNS = ("model", "status", "reason", "seeds")
SEARCH_COLUMNS = ("trials", "failed_trials", "best_val_accuracy", "best_config")
INT_COLUMNS = ("seeds", "params", "trials", "failed_trials")


def compared_columns() -> list[str]:
    """Each compared RunResult field, followed by `<name>_std` where its spread is declared."""
    return [column for name, how in compared_fields() for column in ((name, f"{name}_std") if how.spread else (name,))]


ROBUST_COLUMNS = tuple(f"robust_{name}" for name in CORRUPTIONS)
COLUMNS = (*STATUS_COLUMNS, *compared_columns(), *ROBUST_COLUMNS, *COST_COLUMNS, *SEARCH_COLUMNS,
           "accuracy_per_train_s", "pareto")


@dataclass
class ComparisonRow:
    """The model and how it ended; every compared RunResult field's mean over its seeds (`means`, by field name;
    absent where no seed has it) and spread (`spreads`: the sample standard deviation, None for one seed); accuracy
    under each corruption (`robust`, by corruption); its costs (tune/analysis/cost_columns.py); the search's side;
    then what the comparison derives: accuracy per training second and whether it is on the Pareto front of
    accuracy against training time."""

    model: str
    status: str = "missing"
    reason: str | None = None
    seeds: int = 0
    means: dict[str, float] = field(default_factory=dict)
    spreads: dict[str, float | None] = field(default_factory=dict)
    robust: dict[str, float] = field(default_factory=dict)
    costs: RowCosts = field(default_factory=RowCosts)
    trials: int | None = None
    failed_trials: int | None = None
    best_val_accuracy: float | None = None
    best_config: dict[str, JsonValue] | None = None
    accuracy_per_train_s: float | None = None
    pareto: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def mean(self, name: str) -> float | None:
        """The mean over seeds of RunResult field NAME; None where no seed has it."""
        return self.means.get(name)

    def std(self, name: str) -> float | None:
        return self.spreads.get(name)

    @property
    def test_accuracy(self) -> float | None:
        return self.mean("test_accuracy")

    @property
    def test_accuracy_std(self) -> float | None:
        return self.std("test_accuracy")

    @property
    def train_time_s(self) -> float | None:
        return self.mean("train_time_s")

    @property
    def detector(self) -> bool:
        return self.mean("test_map_50") is not None

    def value(self, column: str) -> float | None:
        """A numeric column by its name in comparison.csv (a mean, a spread, a robustness or cost column); None
        where it is missing or not a finite number."""
        cell = self.columns().get(column)
        return float(cell) if isinstance(cell, int | float) and not isinstance(cell, bool) and is_finite(cell) else None

    def columns(self) -> dict[str, Cell]:
        """Every column of COLUMNS, in its order, as comparison.csv|json write it (None: no value)."""
        compared: dict[str, Cell] = {}
        for name, how in compared_fields():
            compared[name] = self.means.get(name)
            if how.spread:
                compared[f"{name}_std"] = self.spreads.get(name)
        return {"model": self.model, "status": self.status, "reason": self.reason, "seeds": self.seeds, **compared,
                **{column: self.robust.get(column.removeprefix("robust_")) for column in ROBUST_COLUMNS},
                **self.costs.columns(), "trials": self.trials, "failed_trials": self.failed_trials,
                "best_val_accuracy": self.best_val_accuracy, "best_config": self.best_config,
                "accuracy_per_train_s": self.accuracy_per_train_s, "pareto": self.pareto}
