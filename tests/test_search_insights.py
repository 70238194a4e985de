"""tune/analysis/search_insights.py on small hand-made trial records."""

import dataclasses
import math
import random

import pytest

from tune.analysis import search_insights as si
from tune.report.figures import png
from tune.report.parallel import draw_parallel_coordinates
from tune.sweep.trials import TrialRecord

SPACE = {
    "lr": {"loguniform": [1e-3, 1e-2], "grid": [2e-3, 5e-3]},
    "kernel_size": {"choice": [3, 5, 7]},
    "depth": {"randint": [2, 9]},
    "dropout": {"uniform": [0.0, 0.5]},
}


def record(trial_id, config, accuracy, status="ok", start="2024-01-01T00:00:00", seconds=60.0, resources=None,
           model="cnn"):
    end = None if start is None else f"2024-01-01T00:{int(seconds) // 60:02d}:{int(seconds) % 60:02d}+00:00"
    return TrialRecord(model=model, trial_id=trial_id, status=status, config=config, val_accuracy=accuracy,
                       started_at=start, finished_at=end, resources=resources or {"CPU": 1.0})


def kernel_driven_trials(n=16, seed=0):
    """Trials whose accuracy depends on kernel_size and hardly on anything else."""
    rng = random.Random(seed)
    trials = []
    for i in range(n):
        config = {"lr": 10 ** rng.uniform(-3, -2), "kernel_size": rng.choice([3, 5, 7]), "depth": rng.randrange(2, 9),
                  "dropout": rng.uniform(0, 0.5)}
        trials.append(record(f"t{i}", config, 0.9 + 0.02 * config["kernel_size"] + 0.001 * rng.random()))
    return trials


def test_importance_finds_the_key_that_matters_and_is_deterministic():
    trials = kernel_driven_trials()
    first = si.param_importance(trials, SPACE, "cnn", seed=0)
    assert first.method == "fanova" and first.n_trials == 16 and first.reason is None
    assert next(iter(first.values)) == "kernel_size" and first.values["kernel_size"] > 0.5
    assert sum(first.values.values()) == pytest.approx(1.0)
    assert si.param_importance(trials, SPACE, "cnn", seed=0) == first


def test_importance_leaves_out_stopped_failed_and_other_models_and_explains_empty_results():
    trials = kernel_driven_trials(4)
    stopped = [dataclasses.replace(t, status="stopped") for t in trials[:3]]
    assert si.param_importance(stopped + trials[3:], SPACE, "cnn").values == {}
    assert "1 completed" in si.param_importance(stopped + trials[3:], SPACE, "cnn").reason
    assert si.param_importance(stopped + trials[3:], SPACE, "cnn", statuses=("ok", "stopped")).n_trials == 4
    assert si.param_importance(trials, SPACE, "vit").n_trials == 0
    same_config = [record(f"s{i}", {"lr": 1e-3}, 0.9 + i / 100) for i in range(3)]
    assert si.param_importance(same_config, SPACE).reason == "no sampled key took more than one value"
    same_score = [record(f"s{i}", {"lr": 1e-3 * (i + 1)}, 0.9) for i in range(3)]
    assert "same val_accuracy" in si.param_importance(same_score, SPACE).reason


def test_importance_accepts_grid_values_outside_the_range():
    trials = [record(f"g{i}", {"lr": lr, "kernel_size": k}, 0.9 + i / 100)
              for i, (lr, k) in enumerate([(2e-2, 3), (5e-3, 9), (2e-3, 5), (1e-3, 7)])]
    result = si.param_importance(trials, SPACE, "cnn")
    assert set(result.values) == {"lr", "kernel_size"} and result.reason.startswith("only 4 trials")


@pytest.mark.parametrize("config, expected", [
    ({"lr": 1e-2}, [("lr", "top", "lr 0.01 is the top of its range [0.001, 0.01]: widen it")]),
    ({"lr": 0.0095}, [("lr", "top", "lr 0.0095 is the top of its range [0.001, 0.01]: widen it")]),  # 97.8% in log
    ({"lr": 0.008}, []),  # 90.3% of the way in log space
    ({"lr": 1e-3}, [("lr", "bottom", "lr 0.001 is the bottom of its range [0.001, 0.01]: widen it")]),
    ({"dropout": 0.02}, [("dropout", "bottom", "dropout 0.02 is the bottom of its range [0, 0.5]: widen it")]),
    ({"dropout": 0.03}, []),  # 6% of the way
    ({"depth": 8}, [("depth", "top", "depth 8 is the top of its range [2, 8]: widen it")]),  # randint high exclusive
    ({"depth": 7}, []),
    ({"kernel_size": 7}, [("kernel_size", "top", "kernel_size 7 is the largest of its choices [3, 5, 7]: "
                                                 "add larger values")]),
    ({"kernel_size": 5}, []),
])
def test_edge_flags(config, expected):
    flags = si.edge_flags(config, SPACE)
    assert [(f.key, f.edge, f.sentence) for f in flags] == expected


def test_edge_flags_skip_unordered_or_two_value_choices_and_use_grids_when_asked():
    space = {"freeze": {"choice": [True, False]}, "channels": {"choice": ["16,32", "32,64", "64,128"]},
             "batch": {"choice": [64, 128]}, "wd": {"loguniform": [1e-4, 1e-1], "grid": [1e-3, 1e-2, 5e-2]}}
    config = {"freeze": True, "channels": "64,128", "batch": 128, "wd": 5e-2}
    assert si.edge_flags(config, space) == []
    [flag] = si.edge_flags(config, space, use_grid=True)
    assert flag.sentence == "wd 0.05 is the largest of its choices [0.001, 0.01, 0.05]: add larger values"


def test_best_edge_flags_use_the_best_trial_that_did_not_fail():
    trials = [record("a", {"lr": 1e-2}, 0.99, status="failed"), record("b", {"lr": 1e-3}, 0.98),
              record("c", {"lr": 3e-3}, 0.97)]
    assert [f.edge for f in si.best_edge_flags(trials, SPACE, "cnn")] == ["bottom"]
    assert si.best_edge_flags([], SPACE) == []


def test_search_budget_in_cpu_and_gpu_seconds():
    trials = [record("a", {}, 0.9, seconds=60, resources={"CPU": 2.0}),
              record("b", {}, None, status="failed", seconds=30, resources={"CPU": 1.0, "GPU": 0.5}),
              record("c", {}, 0.8, start=None), record("d", {}, 0.8, model="vit")]
    budget = si.search_budget(trials, "cnn")
    assert (budget.cpu_s, budget.gpu_s, budget.trials, budget.untimed) == (150.0, 15.0, 3, 1)
    assert budget.by_status == {"failed": 1, "ok": 2}
    assert si.search_budget(trials, "vit").cpu_s == 60.0


def test_parallel_coordinates_positions():
    trials = [record("a", {"lr": 1e-3, "kernel_size": 3, "dropout": 0.5}, 0.90),
              record("b", {"lr": math.sqrt(1e-5), "kernel_size": 7, "dropout": 0.25}, 0.95),
              record("c", {"lr": 1e-2, "kernel_size": 11}, None, status="failed")]
    data = si.parallel_coordinates(trials, SPACE, "cnn")
    assert [a["key"] for a in data["axes"]] == ["lr", "kernel_size", "dropout", "val_accuracy"]
    assert data["axes"][0]["scale"] == "log" and data["axes"][1]["labels"] == ["3", "5", "7", "11"]
    a, b, c = (line["positions"] for line in data["lines"])
    assert a == pytest.approx([0.0, 0.0, 1.0, 0.0])
    assert b == pytest.approx([0.5, 2 / 3, 0.5, 1.0])
    assert c[:2] == pytest.approx([1.0, 1.0]) and c[2:] == [None, None]
    drawn = png(draw_parallel_coordinates(data, title="cnn"))  # the report's one figure encoding
    assert drawn.startswith("iVBORw0KGgo") and len(drawn) > 1000  # base64 of the PNG signature
