"""Time to accuracy, resource-seconds, prices and verdicts, on made-up records with totals worked out by hand."""

from __future__ import annotations

import math

import pytest

from tune.analysis import cost

HISTORY = [  # out of order on purpose: sorted by epoch
    {"epoch": 3, "val_accuracy": 0.9905, "epoch_time_s": 12.0},
    {"epoch": 1, "val_accuracy": 0.970, "epoch_time_s": 15.0},  # the first epoch is slower (warm-up)
    {"epoch": 2, "val_accuracy": 0.985, "epoch_time_s": 10.0},
    {"epoch": 4, "val_accuracy": float("nan"), "epoch_time_s": 11.0},  # a lost evaluation: its time still counts
    {"epoch": 5, "val_accuracy": 0.9951, "epoch_time_s": 10.5},
]


def test_time_to_each_accuracy_target():
    assert cost.time_to_targets(HISTORY) == {
        0.98: 15.0 + 10.0,  # first reached at epoch 2
        0.99: 15.0 + 10.0 + 12.0,  # epoch 3
        0.995: 15.0 + 10.0 + 12.0 + 11.0 + 10.5,  # epoch 5
    }
    assert cost.time_to_targets(HISTORY[:3], targets=(0.995,)) == {0.995: None}  # never reached
    assert cost.time_to_targets([], targets=(0.99,)) == {0.99: None}


def test_time_to_detection_map_targets():
    history = [{"epoch": 1, "map_50": 0.45, "val_accuracy": 0.9, "epoch_time_s": 60.0},
               {"epoch": 2, "map_50": 0.72, "val_accuracy": 0.95, "epoch_time_s": 50.0}]
    assert cost.time_to_targets(history, cost.DETECTION_TARGETS, metric="map_50") == {0.5: 110.0, 0.7: 110.0,
                                                                                     0.9: None}


def test_an_epoch_without_its_time_is_an_error():
    with pytest.raises(ValueError, match="epoch 2"):
        cost.time_to_targets([{"epoch": 1, "val_accuracy": 0.5, "epoch_time_s": 3.0},
                              {"epoch": 2, "val_accuracy": 0.99, "epoch_time_s": None}])


# Two models; times in UTC, one with an offset, one without a zone (taken as UTC).
TRIALS = [
    {"model": "cnn", "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:10:00+00:00",
     "resources": {"CPU": 1.0, "GPU": 0.25}},  # 600 s: 600 CPU-s, 150 GPU-s
    {"model": "cnn", "started_at": "2026-01-01T01:00:00+01:00", "finished_at": "2026-01-01T00:05:00",
     "resources": {"CPU": 2.0}},  # 300 s: 600 CPU-s
    {"model": "vit", "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T01:00:00+00:00",
     "resources": {"CPU": 1.0, "GPU": 0.5}},  # 3600 s: 3600 CPU-s, 1800 GPU-s
    {"model": "vit", "started_at": None, "finished_at": None, "resources": {"CPU": 1.0}},  # untimed: 0
]
RETRAINS = [
    {"model": "cnn", "seed": 0, "started_at": "2026-01-01T02:00:00+00:00",
     "finished_at": "2026-01-01T02:20:00+00:00", "resources": {"CPU": 1.0, "GPU": 1.0}},  # 1200 CPU-s, 1200 GPU-s
    {"model": "cnn", "config": {"seed": 1}, "started_at": "2026-01-01T02:00:00+00:00",
     "finished_at": "2026-01-01T02:30:00+00:00", "resources": {"CPU": 1.0, "GPU": 1.0}},  # 1800, 1800
]


def test_resource_seconds_per_model_and_phase():
    held = cost.resource_seconds(TRIALS, RETRAINS)
    assert held["by_model"]["cnn"] == {"search": {"CPU": 1200.0, "GPU": 150.0},
                                       "retrain": {"CPU": 3000.0, "GPU": 3000.0},
                                       "total": {"CPU": 4200.0, "GPU": 3150.0}}
    assert held["by_model"]["vit"]["total"] == {"CPU": 3600.0, "GPU": 1800.0}
    assert held["total"] == {"CPU": 7800.0, "GPU": 4950.0} and held["untimed"] == 1


def test_dollars_per_model_per_retrain_and_for_the_sweep():
    prices = cost.Prices(cpu_hour=0.36, gpu_hour=3.6)  # 0.0001 $ per CPU-s, 0.001 $ per GPU-s
    costs = cost.sweep_costs(TRIALS, RETRAINS, prices)
    assert costs["by_model"]["cnn"]["search_usd"] == pytest.approx(1200 * 0.0001 + 150 * 0.001)  # 0.27
    assert costs["by_model"]["cnn"]["retrain_usd"] == pytest.approx(3000 * 0.0001 + 3000 * 0.001)  # 3.30
    assert costs["by_model"]["cnn"]["total_usd"] == pytest.approx(3.57)
    assert costs["by_model"]["vit"]["total_usd"] == pytest.approx(3600 * 0.0001 + 1800 * 0.001)  # 2.16
    assert [(r["model"], r["seed"], round(r["cost_usd"], 6)) for r in costs["retrains"]] == [
        ("cnn", 0, 1.32), ("cnn", 1, 1.98)]
    assert costs["total_usd"] == pytest.approx(3.57 + 2.16)
    assert (costs["cpu_s"], costs["gpu_s"]) == (7800.0, 4950.0)
    assert costs["prices"]["cpu_hour"] == 0.36


def test_cost_to_reach_a_target():
    prices = cost.Prices(cpu_hour=0.36, gpu_hour=3.6)
    assert cost.cost_to_reach(100.0, {"CPU": 1.0, "GPU": 0.5}, prices) == pytest.approx(100 * 0.0001 + 50 * 0.001)
    assert cost.cost_to_reach(None, {"CPU": 1.0}, prices) is None


def test_price_text_is_parsed():
    assert cost.parse_prices("cpu_hour=0.05,gpu_hour=2.50") == cost.Prices(0.05, 2.5, cost.parse_prices(
        "cpu_hour=0.05,gpu_hour=2.50").source)
    partial = cost.parse_prices(" gpu_hour = 1 ")
    assert (partial.cpu_hour, partial.gpu_hour) == (cost.DEFAULT_PRICES.cpu_hour, 1.0)
    assert cost.parse_prices(None) is cost.DEFAULT_PRICES and cost.parse_prices("  ") is cost.DEFAULT_PRICES
    assert cost.parse_prices("cpu_hour=0,gpu_hour=0").gpu_hour == 0.0


@pytest.mark.parametrize(("text", "message"), [
    ("tpu_hour=1", "unknown key 'tpu_hour'"),
    ("cpu_hour=cheap", "must be a number"),
    ("cpu_hour=-0.01", "non-negative"),
    ("gpu_hour=nan", "finite"),
    ("gpu_hour=inf", "finite"),
    ("cpu_hour", "expected key=value"),
    ("cpu_hour=1,cpu_hour=2", "twice"),
])
def test_bad_price_text_is_refused_clearly(text, message):
    with pytest.raises(ValueError, match=message):
        cost.parse_prices(text)


def test_default_prices_say_where_they_come_from():
    assert cost.DEFAULT_PRICES.cpu_hour > 0 and cost.DEFAULT_PRICES.gpu_hour > 0
    assert "2024" in cost.DEFAULT_PRICES.source and "not a quote" in cost.DEFAULT_PRICES.source


ROWS = [
    {"model": "cnn", "test_accuracy": 0.9921, "latency_ms_p50": 0.40, "cost_usd": 0.05, "time_to_99_s": 120.0,
     "cost_to_99_usd": 0.0021},
    {"model": "resnet18", "test_accuracy": 0.9950, "latency_ms_p50": 4.1, "cost_usd": 0.90, "time_to_99_s": 300.0,
     "cost_to_99_usd": 0.25},
    {"model": "vit", "test_accuracy": 0.9902, "latency_ms_p50": 0.30, "cost_usd": 0.04, "time_to_99_s": None,
     "cost_to_99_usd": None},
    {"model": "vgg16", "test_accuracy": 0.9949, "latency_ms_p50": 2.0, "cost_usd": 1.20, "time_to_99_s": 900.0,
     "cost_to_99_usd": 1.10},
    {"model": "alexnet", "test_accuracy": None, "latency_ms_p50": 0.1, "cost_usd": None, "time_to_99_s": None},
]


def test_cheapest_to_train_to_99():
    verdict = cost.cheapest_to_target(ROWS)
    assert verdict["model"] == "cnn" and verdict["cost_usd"] == 0.0021
    assert verdict["text"] == "cheapest to train to 99%: cnn, $0.0021"
    assert cost.cheapest_to_target([r for r in ROWS if r["model"] == "vit"]) is None


def test_fastest_to_serve_within_half_a_point_of_the_best():
    # Best 99.50% (resnet18): all four with numbers are >= 99.00%, and vit (0.30 ms) is the fastest of them.
    verdict = cost.fastest_within(ROWS)
    assert verdict["model"] == "vit" and verdict["latency_ms"] == 0.30 and verdict["best_accuracy"] == 0.995
    assert verdict["text"] == "fastest to serve within 0.5 points of the best: vit at 0.3 ms per image"
    assert cost.fastest_within(ROWS, points=0.3)["model"] == "cnn"  # >= 99.20%: cnn, vgg16, resnet18
    assert cost.fastest_within(ROWS, points=0.01)["model"] == "vgg16"  # >= 99.49%
    assert cost.fastest_within(ROWS, points=0.0)["model"] == "resnet18"
    assert cost.fastest_within([]) is None


def test_pareto_of_accuracy_and_cost_reuses_the_stats_front():
    # vit is cheapest; cnn is dearer but more accurate; resnet18 more accurate again; vgg16 costs more than resnet18
    # for less accuracy (dominated); alexnet has no numbers.
    assert cost.cost_pareto(ROWS) == ["vit", "cnn", "resnet18"]
    with pytest.raises(ValueError):
        cost.cost_pareto([{"model": "a"}, {"model": "a"}])


@pytest.mark.parametrize(("value", "text"), [(0.0021, "$0.0021"), (0.5, "$0.50"), (12.345, "$12.35"),
                                             (0.00003, "$0.000030"), (0.0, "$0.00")])
def test_dollars_are_printed_with_two_significant_figures_below_one(value, text):
    assert cost.fmt_usd(value) == text
    assert math.isfinite(value)


def test_typed_records_count_the_same_as_stored_dicts():
    from jobs.engine.run_result import RunResult
    from tune.sweep.trials import TrialRecord

    trials = [TrialRecord(model=t["model"], trial_id=str(i), status="ok", started_at=t["started_at"],
                          finished_at=t["finished_at"], resources=t["resources"]) for i, t in enumerate(TRIALS)]
    retrains = [RunResult.from_json({**{k: v for k, v in r.items() if k != "seed"}, "config": {"seed": k}})
                for k, r in enumerate(RETRAINS)]
    prices = cost.Prices(cpu_hour=0.36, gpu_hour=3.6)
    typed, stored = cost.sweep_costs(trials, retrains, prices), cost.sweep_costs(TRIALS, RETRAINS, prices)
    assert typed == stored


def test_time_to_target_reads_the_run_clock_of_checks_within_an_epoch():
    # val_checks_per_epoch 4: four reports in one epoch, each with the run's training seconds so far.
    history = [{"epoch": 0.25, "train_time_s": 10.0, "val_accuracy": 0.95},
               {"epoch": 0.5, "train_time_s": 21.0, "val_accuracy": 0.981},
               {"epoch": 0.75, "train_time_s": 30.5, "val_accuracy": 0.985},
               {"epoch": 1, "epoch_time_s": 41.0, "train_time_s": 41.0, "val_accuracy": 0.991}]
    assert cost.time_to_targets(history) == {0.98: 21.0, 0.99: 41.0, 0.995: None}
    # Summing epoch_time_s where the checks have none would raise: the clock is train_time_s here.
    assert cost.time_to_targets(history[-1:]) == {0.98: 41.0, 0.99: 41.0, 0.995: None}
