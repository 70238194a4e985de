"""Turn the data in tune/sweep/spaces.py into a Ray Tune search space and search algorithm."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ray import tune as ray_tune
from ray.tune.search import SearchAlgorithm, Searcher
from ray.tune.search.sample import Domain

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

from tune.sweep.cost_search import CostOf, WithCost
from tune.sweep.spaces import SEARCHES, space_of

__all__ = ["SEARCHES", "concurrency", "param_space", "planned_trials", "search_algorithm"]
# A Ray Tune param space: a sampled domain per key (random, Optuna), or {"grid_search": values} (grid).
Space = dict[str, "Domain | dict[str, list]"]
SAMPLERS = {"choice": ray_tune.choice, "uniform": lambda a: ray_tune.uniform(*a),
            "loguniform": lambda a: ray_tune.loguniform(*a), "randint": lambda a: ray_tune.randint(*a)}


def param_space(model: str, search: str, overrides: dict[str, dict] | None = None) -> Space:
    """Ray Tune domains for random/Optuna search; grid_search over the `grid` (or choice) values for grid."""
    space = {}
    for key, entry in space_of(model, overrides).items():
        kind = next(k for k in entry if k != "grid")
        if search == "grid":
            space[key] = ray_tune.grid_search(entry.get("grid", entry[kind]))
        else:
            space[key] = SAMPLERS[kind](entry[kind])
    return space


def planned_trials(space: Space, samples: int) -> int:
    """Trials a Tuner runs for SPACE: samples, times every combination of a grid (Tune runs each grid point once
    per sample)."""
    points = math.prod(len(v["grid_search"]) for v in space.values() if isinstance(v, dict) and "grid_search" in v)
    return samples * points


def concurrency(space: Space, samples: int, fits: int) -> int:
    """Trials at once: as many as fit on the cluster, but no more than there are trials to run (a grid's
    `samples` is 1 while it holds many trials: it uses the cluster like any other search)."""
    return max(1, min(fits, planned_trials(space, samples)))


def search_algorithm(search: str, metric: str, mode: str, concurrency: int, seed: int = 0,
                     study: tuple[BaseStorage, str] | None = None,
                     cost: CostOf | None = None) -> SearchAlgorithm | Searcher:
    """Seeded, so that a sweep run again draws the same trials and its cost can be compared. STUDY (a storage
    and a study name): where an Optuna search keeps its study, so that the dashboard shows it as it runs and a
    resumed search continues it (tune/sweep/study.py). COST: an Optuna search over accuracy and that cost, which
    is minimised (tune/sweep/objectives.py).

    The algorithm also caps concurrency itself: Tune ignores `max_concurrent_trials` for a variant generator."""
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

    if search != "optuna":  # random sampling, or the grid
        return BasicVariantGenerator(max_concurrent=max(concurrency, 1), random_state=seed)
    from ray.tune.search.optuna import OptunaSearch

    storage, name = study if study else (None, None)
    if cost is None:
        searcher: Searcher = OptunaSearch(metric=metric, mode=mode, seed=seed, storage=storage, study_name=name)
    else:
        searcher = WithCost(OptunaSearch(metric=[metric, cost.cost], mode=[mode, "min"], seed=seed, storage=storage,
                                         study_name=name), cost.model, cost.base, cost.cost)
    return ConcurrencyLimiter(searcher, max_concurrent=max(concurrency, 1))
