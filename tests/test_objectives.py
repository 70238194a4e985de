"""Two objectives (tune/sweep/objectives.py): the cost of a configuration, the choice of the retrained one within
--budget, and why. The search itself runs in tests/test_sweep_faults.py's Optuna sweep."""

from __future__ import annotations

import pytest

from jobs.engine import config as run_config
from jobs.engine.errors import UsageError
from tune.sweep.cost_search import config_cost
from tune.sweep.objectives import Objective, parse_objective
from tune.sweep.trials import TrialRecord, best_trial, why_chosen


def test_the_flags_read_as_an_objective():
    assert parse_objective(None, None) == Objective() and Objective().text == "accuracy"
    assert parse_objective("accuracy, gflops", "gflops=0.05") == Objective("gflops", 0.05)
    assert parse_objective("accuracy,params", None).text == "accuracy,params"
    for text, budget in [("accuracy,latency", None), ("accuracy,gflops,params", None), ("accuracy,gflops", "gflops=0"),
                         ("accuracy,gflops", "gflops=nan"), ("accuracy", "gflops=1")]:
        with pytest.raises(UsageError):
            parse_objective(text, budget)


@pytest.mark.parametrize("model", ["cnn", "vit", "faster_rcnn", "vgg16"])
def test_a_cost_is_the_configurations_own(model):
    """Built as the trial is (a sampled "16,32" is typed first), never reading ImageNet weights (vgg16's are not
    here): parameters as models count them, more for a wider network; GFLOPs positive."""
    base = run_config.preset_config(model, "smoke")
    params = config_cost(model, base, {}, "params")
    assert params is not None and params > 0 and config_cost(model, base, {}, "gflops") > 0
    if model == "cnn":
        assert config_cost(model, base, {"channels": "32,64,128"}, "params") > config_cost(
            model, base, {"channels": "16,32"}, "params")
        assert config_cost(model, base, {"channels": "not,a,width"}, "params") is None  # its trial fails, says why


def trial(trial_id: str, accuracy: float | None, cost: float | None, status: str = "ok") -> TrialRecord:
    return TrialRecord(model="cnn", trial_id=trial_id, status=status, val_accuracy=accuracy, cost=cost)


def test_the_retrained_configuration_is_the_most_accurate_within_the_budget():
    trials = [trial("big", 0.99, 0.30), trial("mid", 0.97, 0.04), trial("small", 0.90, 0.01),
              trial("broken", 1.0, 0.001, status="failed")]
    assert best_trial(trials).trial_id == "big"
    assert why_chosen(best_trial(trials), None, None) == "the most accurate"
    chosen = best_trial(trials, 0.05)
    assert chosen.trial_id == "mid" and why_chosen(chosen, "gflops", 0.05) == "the most accurate within gflops <= 0.05"
    none_within = best_trial(trials, 0.001)  # nothing that did not fail is that cheap: the most accurate, said so
    assert none_within.trial_id == "big"
    assert why_chosen(none_within, "gflops", 0.001) == "the most accurate: no trial was within gflops <= 0.001"
