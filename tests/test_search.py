"""The search draws its trials from a seed: the same sweep run again tries the same configs."""

import pytest
from ray.tune.experiment import Experiment

from tune.sweep.search import param_space, search_algorithm


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


@pytest.mark.parametrize("search", ["random", "optuna"])
def test_search_hands_out_no_more_trials_than_its_cap_until_one_finishes(search):
    """Observed through the calls Tune makes: with 2 running, the algorithm gives no third trial until one ends."""
    algorithm, space = search_algorithm(search, "val_accuracy", "max", 2, seed=0), param_space("cnn", search)
    if search == "optuna":
        algorithm.set_search_properties("val_accuracy", "max", space)
        running = [f"t{i}" for i in range(2)]
        assert all(algorithm.suggest(t) is not None for t in running)
        assert algorithm.suggest("t2") is None
        algorithm.on_trial_complete("t0", {"val_accuracy": 0.5})
        assert algorithm.suggest("t2") is not None
        return
    algorithm.add_configurations([Experiment("cap", lambda config: None, config=space, num_samples=5)])
    running = [algorithm.next_trial() for _ in range(2)]
    assert all(running) and algorithm.next_trial() is None
    algorithm.on_trial_complete(running[0].trial_id, {"val_accuracy": 0.5})
    assert algorithm.next_trial() is not None


def test_a_grid_uses_the_cluster_like_any_other_search():
    # The 108-point cnn grid (samples 1) ran one trial at a time: concurrency was min(fits, samples).
    from tune.sweep.search import concurrency, planned_trials

    grid = param_space("cnn", "grid")
    points = 3 * 2 * 3 * 2 * 3  # kernel_size, dropout grid, channels, lr grid, batch_size
    assert planned_trials(grid, 1) == points == 108 and planned_trials(grid, 2) == 2 * points
    assert concurrency(grid, 1, fits=16) == 16  # a 4-GPU cluster's worth of cnn trials at once
    assert concurrency(grid, 1, fits=200) == 108  # never more than there are trials
    random_space = param_space("cnn", "random")
    assert planned_trials(random_space, 2) == 2 and concurrency(random_space, 2, fits=16) == 2
    assert concurrency(random_space, 5, fits=0) == 1  # never 0: a Tuner with no slot would wait forever
    # And the grid's trials really are handed out that many at a time by the search algorithm.
    algorithm = search_algorithm("grid", "val_accuracy", "max", concurrency(grid, 1, fits=16), seed=0)
    algorithm.add_configurations([Experiment("grid", lambda config: None, config=grid, num_samples=1)])
    running = [algorithm.next_trial() for _ in range(16)]
    assert all(running) and algorithm.next_trial() is None
