"""Turn the data in tune/spaces.py into a Ray Tune search space and search algorithm."""

from __future__ import annotations

from typing import Any

from ray import tune as ray_tune

from tune.spaces import SEARCHES, SPACES

__all__ = ["SEARCHES", "param_space", "search_algorithm", "space_of"]
SAMPLERS = {"choice": ray_tune.choice, "uniform": lambda a: ray_tune.uniform(*a),
            "loguniform": lambda a: ray_tune.loguniform(*a), "randint": lambda a: ray_tune.randint(*a)}


def space_of(model: str, overrides: dict[str, dict] | None = None) -> dict[str, dict]:
    """The model's space from tune/spaces.py, or the one a `--space` file gives for it."""
    return (overrides or {}).get(model, SPACES[model])


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


def search_algorithm(search: str, metric: str, mode: str, concurrency: int, seed: int = 0) -> Any:
    """Seeded, so that a sweep run again draws the same trials and its cost can be compared.

    The algorithm also caps concurrency itself: Tune ignores `max_concurrent_trials` for a variant generator."""
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

    if search != "optuna":  # random sampling, or the grid
        return BasicVariantGenerator(max_concurrent=max(concurrency, 1), random_state=seed)
    from ray.tune.search.optuna import OptunaSearch

    return ConcurrencyLimiter(OptunaSearch(metric=metric, mode=mode, seed=seed), max_concurrent=max(concurrency, 1))
