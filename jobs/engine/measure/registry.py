"""The final measurements made from a run's test predictions, found without a list to keep up to date.

A measurement of this kind is a function of (labels int [N], predicted int [N], probabilities float [N, 10] or None
for the detector) returning RunResult fields (jobs/engine/run_result.py), registered with `@on_predictions(name)`
in a module of this room. `prediction_measures()` imports every module of the room, so a new measurement is its
module and its RunResult field, nothing else (jobs/engine/measure/confident_errors.py is one).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

import numpy as np

PredictionMeasure = Callable[[np.ndarray, np.ndarray, np.ndarray | None], dict[str, Any]]
_MEASURES: dict[str, PredictionMeasure] = {}


def on_predictions(name: str) -> Callable[[PredictionMeasure], PredictionMeasure]:
    """Register the decorated function as the measurement NAME (its key in final_evaluation_errors when it fails).
    Raises ValueError for a NAME registered by another function."""

    def register(measure: PredictionMeasure) -> PredictionMeasure:
        known = _MEASURES.get(name)
        if known is not None and known.__qualname__ != measure.__qualname__:
            raise ValueError(f"two final measurements are called {name!r}: {known.__module__}, {measure.__module__}")
        _MEASURES[name] = measure
        return measure

    return register


def prediction_measures() -> dict[str, PredictionMeasure]:
    """Every registered measurement by name, in name order, after importing each module of this room."""
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{__package__}.{module.name}")
    return dict(sorted(_MEASURES.items()))
