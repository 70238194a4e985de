"""Turn the data in tune/spaces.py into a Ray Tune search space and search algorithm."""

from __future__ import annotations

from typing import Any

from ray import tune

from tune.spaces import SEARCHES, SPACES

__all__ = ["SEARCHES", "grid_size", "param_space", "search_algorithm"]
SAMPLERS = {"choice": tune.choice, "uniform": lambda a: tune.uniform(*a), "loguniform": lambda a: tune.loguniform(*a),
            "randint": lambda a: tune.randint(*a)}


def param_space(model: str, search: str) -> dict[str, Any]:
    """Ray Tune domains for random/Optuna search; grid_search over the `grid` (or choice) values for grid."""
    space = {}
    for key, entry in SPACES[model].items():
        kind = next(k for k in entry if k != "grid")
        if search == "grid":
            space[key] = tune.grid_search(entry.get("grid", entry[kind]))
        else:
            space[key] = SAMPLERS[kind](entry[kind])
    return space


def search_algorithm(search: str, metric: str, mode: str, concurrency: int) -> Any:
    """None lets Tune use its basic variant generator (random sampling, or the grid)."""
    if search != "optuna":
        return None
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    return ConcurrencyLimiter(OptunaSearch(metric=metric, mode=mode), max_concurrent=max(concurrency, 1))


def grid_size(model: str) -> int:
    size = 1
    for entry in SPACES[model].values():
        kind = next(k for k in entry if k != "grid")
        size *= len(entry.get("grid", entry[kind]))
    return size
