"""The search draws its trials from a seed: the same sweep run again tries the same configs."""

import pytest
from ray.tune.experiment import Experiment

from tune.search import param_space, search_algorithm


def draws(search: str, seed: int, samples: int = 4) -> list[dict]:
    algorithm, space = search_algorithm(search, "val_accuracy", "max", samples, seed), param_space("cnn", search)
    if search == "optuna":
        algorithm.set_search_properties("val_accuracy", "max", space)
        return [algorithm.suggest(f"t{i}") for i in range(samples)]
    algorithm.add_configurations([Experiment("draws", lambda config: None, config=space, num_samples=samples)])
    trials = []
    while (trial := algorithm.next_trial()) is not None:
        trials.append(trial.config)
    return trials


@pytest.mark.parametrize("search", ["random", "optuna"])
def test_same_seed_same_trials_other_seed_other_trials(search):
    first = draws(search, seed=0)
    assert len(first) == 4 and all(set(config) == set(param_space("cnn", search)) for config in first)
    assert draws(search, seed=0) == first
    assert draws(search, seed=1) != first


def test_search_caps_concurrency_itself():
    assert search_algorithm("random", "val_accuracy", "max", 2).max_concurrent == 2
    assert search_algorithm("optuna", "val_accuracy", "max", 3).max_concurrent == 3
