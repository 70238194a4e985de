"""Turn the data in tune/sweep/spaces.py into a Ray Tune search space and search algorithm."""

from __future__ import annotations

import math
from typing import Any

from ray import tune as ray_tune

from tune.sweep.spaces import SEARCHES, space_of

__all__ = ["SEARCHES", "concurrency", "param_space", "planned_trials", "search_algorithm"]
SAMPLERS = {"choice": ray_tune.choice, "uniform": lambda a: ray_tune.uniform(*a),
            "loguniform": lambda a: ray_tune.loguniform(*a), "randint": lambda a: ray_tune.randint(*a)}


def param_space(model: str, search: str, overrides: dict[str, dict] | None = None) -> dict[str, Any]:
    """Ray Tune domains for random/Optuna search; grid_search over the `grid` (or choice) values for grid."""
    space = {}
    for key, entry in space_of(model, overrides).items():
        kind = next(k for k in entry if k != "grid")
        if search == "grid":
            space[key] = ray_tune.grid_search(entry.get("grid", entry[kind]))
        else:
            space[key] = SAMPLERS[kind](entry[kind])
    return space


def planned_trials(space: dict[str, Any], samples: int) -> int:
    """Trials a Tuner runs for SPACE: samples, times every combination of a grid (Tune runs each grid point once
    per sample)."""
    points = math.prod(len(v["grid_search"]) for v in space.values() if isinstance(v, dict) and "grid_search" in v)
    return samples * points


def concurrency(space: dict[str, Any], samples: int, fits: int) -> int:
    """Trials at once: as many as fit on the cluster, but no more than there are trials to run (a grid's
    `samples` is 1 while it holds many trials: it uses the cluster like any other search)."""
    return max(1, min(fits, planned_trials(space, samples)))


def search_algorithm(search: str, metric: str, mode: str, concurrency: int, seed: int = 0) -> Any:
    """Seeded, so that a sweep run again draws the same trials and its cost can be compared.

    The algorithm also caps concurrency itself: Tune ignores `max_concurrent_trials` for a variant generator."""
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

    if search != "optuna":  # random sampling, or the grid
        return BasicVariantGenerator(max_concurrent=max(concurrency, 1), random_state=seed)
    from ray.tune.search.optuna import OptunaSearch

    return ConcurrencyLimiter(OptunaSearch(metric=metric, mode=mode, seed=seed), max_concurrent=max(concurrency, 1))
