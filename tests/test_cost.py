"""Time to accuracy, resource-seconds, prices and verdicts, on made-up records with totals worked out by hand."""

from __future__ import annotations

import math

import pytest

from jobs.engine.run_result import RunResult
from tune.analysis import cost
from tune.analysis.cost_columns import COST_COLUMNS, MAP_TIME_COLUMNS, TIME_COLUMNS
from tune.analysis.row import ComparisonRow
from tune.analysis.stats import pareto_front
from tune.analysis.verdicts import cheapest_to_target, fastest_within
from tune.sweep import prices
from tune.sweep.trials import TrialRecord

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
    {"model": "cnn", "config": {"seed": 0}, "started_at": "2026-01-01T02:00:00+00:00",
     "finished_at": "2026-01-01T02:20:00+00:00", "resources": {"CPU": 1.0, "GPU": 1.0}},  # 1200 CPU-s, 1200 GPU-s
    {"model": "cnn", "config": {"seed": 1}, "started_at": "2026-01-01T02:00:00+00:00",
     "finished_at": "2026-01-01T02:30:00+00:00", "resources": {"CPU": 1.0, "GPU": 1.0}},  # 1800, 1800
]


def typed() -> tuple[list[TrialRecord], list[RunResult]]:
    """TRIALS and RETRAINS as a sweep folder is read: trials.json's records and result.json's."""
    return ([TrialRecord(model=t["model"], trial_id=str(i), status="ok", started_at=t["started_at"],
                         finished_at=t["finished_at"], resources=t["resources"]) for i, t in enumerate(TRIALS)],
            [RunResult.from_json(r) for r in RETRAINS])


def test_resource_seconds_per_model_and_phase():
    held = cost.sweep_costs(*typed())
    cnn = held.by_model["cnn"]
    assert (cnn.search, cnn.retrain, cnn.total) == (cost.Held(1200.0, 150.0), cost.Held(3000.0, 3000.0),
                                                    cost.Held(4200.0, 3150.0))
    assert held.by_model["vit"].total == cost.Held(3600.0, 1800.0)
    assert held.total == cost.Held(7800.0, 4950.0) and held.untimed == 1


def test_dollars_per_model_per_retrain_and_for_the_sweep():
    at = prices.Prices(cpu_hour=0.36, gpu_hour=3.6)  # 0.0001 $ per CPU-s, 0.001 $ per GPU-s
    costs = cost.sweep_costs(*typed(), at)
    cnn, vit = costs.by_model["cnn"], costs.by_model["vit"]
    assert cnn.search.usd(at) == pytest.approx(1200 * 0.0001 + 150 * 0.001)  # 0.27
    assert cnn.retrain.usd(at) == pytest.approx(3000 * 0.0001 + 3000 * 0.001)  # 3.30
    assert cnn.total.usd(at) == pytest.approx(3.57)
    assert vit.total.usd(at) == pytest.approx(3600 * 0.0001 + 1800 * 0.001)  # 2.16
    assert [(r.model, r.seed, round(r.usd, 6)) for r in costs.retrains] == [("cnn", 0, 1.32), ("cnn", 1, 1.98)]
    assert costs.total_usd == pytest.approx(3.57 + 2.16)
    assert costs.prices.cpu_hour == 0.36


def test_the_cost_columns_are_declared_once():
    assert {*TIME_COLUMNS.values(), *MAP_TIME_COLUMNS.values()} <= set(COST_COLUMNS)
    assert "timed" not in COST_COLUMNS


def test_cost_to_reach_a_target():
    at = prices.Prices(cpu_hour=0.36, gpu_hour=3.6)
    assert cost.cost_to_reach(100.0, {"CPU": 1.0, "GPU": 0.5}, at) == pytest.approx(100 * 0.0001 + 50 * 0.001)
    assert cost.cost_to_reach(None, {"CPU": 1.0}, at) is None


def test_price_text_is_parsed():
    assert prices.parse_prices("cpu_hour=0.05,gpu_hour=2.50") == prices.Prices(0.05, 2.5, prices.parse_prices(
        "cpu_hour=0.05,gpu_hour=2.50").source)
    partial = prices.parse_prices(" gpu_hour = 1 ")
    assert (partial.cpu_hour, partial.gpu_hour) == (prices.DEFAULT_PRICES.cpu_hour, 1.0)
    assert prices.parse_prices(None) is prices.DEFAULT_PRICES and prices.parse_prices("  ") is prices.DEFAULT_PRICES
    assert prices.parse_prices("cpu_hour=0,gpu_hour=0").gpu_hour == 0.0


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
        prices.parse_prices(text)


def test_default_prices_say_where_they_come_from():
    assert prices.DEFAULT_PRICES.cpu_hour > 0 and prices.DEFAULT_PRICES.gpu_hour > 0
    assert "2024" in prices.DEFAULT_PRICES.source and "not a quote" in prices.DEFAULT_PRICES.source


def row(model: str, accuracy: float | None, latency: float, usd: float | None, seconds: float | None,
        to_99_usd: float | None = None) -> ComparisonRow:
    out = ComparisonRow(model, "ok", means={"latency_ms_p50": latency})
    if accuracy is not None:
        out.means["test_accuracy"] = accuracy
    out.costs.cost_usd, out.costs.time_to_99_s, out.costs.cost_to_99_usd = usd, seconds, to_99_usd
    return out


ROWS = [
    row("cnn", 0.9921, 0.40, 0.05, 120.0, 0.0021),
    row("resnet18", 0.9950, 4.1, 0.90, 300.0, 0.25),
    row("vit", 0.9902, 0.30, 0.04, None),
    row("vgg16", 0.9949, 2.0, 1.20, 900.0, 1.10),
    row("alexnet", None, 0.1, None, None),
]


def test_cheapest_to_train_to_99():
    verdict = cheapest_to_target(ROWS)
    assert verdict is not None and verdict.model == "cnn" and verdict.cost_usd == 0.0021
    assert verdict.text == "cheapest to train to 99%: cnn, $0.0021"
    assert cheapest_to_target([r for r in ROWS if r.model == "vit"]) is None


def test_fastest_to_serve_within_half_a_point_of_the_best():
    # Best 99.50% (resnet18): all four with numbers are >= 99.00%, and vit (0.30 ms) is the fastest of them.
    verdict = fastest_within(ROWS)
    assert verdict is not None and verdict.model == "vit" and verdict.latency_ms == 0.30
    assert verdict.best_accuracy == 0.995
    assert verdict.text == "fastest to serve within 0.5 points of the best: vit at 0.3 ms per image"
    assert [fastest_within(ROWS, points=p).model for p in (0.3, 0.01, 0.0)] == ["cnn", "vgg16", "resnet18"]
    assert fastest_within([]) is None


def test_pareto_of_accuracy_and_cost_is_the_one_front():
    # vit is cheapest; cnn is dearer but more accurate; resnet18 more accurate again; vgg16 costs more than resnet18
    # for less accuracy (dominated); alexnet has no numbers.
    accuracy = {r.model: r.test_accuracy for r in ROWS if r.test_accuracy is not None}
    assert pareto_front(accuracy, {r.model: r.costs.cost_usd for r in ROWS if r.costs.cost_usd}) == [
        "vit", "cnn", "resnet18"]


@pytest.mark.parametrize(("value", "text"), [(0.0021, "$0.0021"), (0.5, "$0.50"), (12.345, "$12.35"),
                                             (0.00003, "$0.000030"), (0.0, "$0.00")])
def test_dollars_are_printed_with_two_significant_figures_below_one(value, text):
    assert cost.fmt_usd(value) == text
    assert math.isfinite(value)


def test_time_to_target_reads_the_run_clock_of_checks_within_an_epoch():
    # val_checks_per_epoch 4: four reports in one epoch, each with the run's training seconds so far.
    history = [{"epoch": 0.25, "train_time_s": 10.0, "val_accuracy": 0.95},
               {"epoch": 0.5, "train_time_s": 21.0, "val_accuracy": 0.981},
               {"epoch": 0.75, "train_time_s": 30.5, "val_accuracy": 0.985},
               {"epoch": 1, "epoch_time_s": 41.0, "train_time_s": 41.0, "val_accuracy": 0.991}]
    assert cost.time_to_targets(history) == {0.98: 21.0, 0.99: 41.0, 0.995: None}
    # Summing epoch_time_s where the checks have none would raise: the clock is train_time_s here.
    assert cost.time_to_targets(history[-1:]) == {0.98: 41.0, 0.99: 41.0, 0.995: None}


def test_prices_are_stored_typed_in_the_sweep_record_and_written_as_before(tmp_path):
    from tune.sweep.record import Sweep

    given = {"cpu_hour": 0.05, "gpu_hour": 2.5, "source": "--price cpu_hour=0.05,gpu_hour=2.50"}
    for stored, typed_as in (({}, None), (given, prices.Prices(0.05, 2.5, given["source"]))):
        sweep = Sweep.from_json(tmp_path, {"models": ["cnn"], "prices": stored}, [])
        assert sweep.prices == typed_as and sweep.to_json()["prices"] == stored
    assert Sweep.from_json(tmp_path, {"models": ["cnn"]}, []).prices is None  # an older sweep.json: the defaults
    with pytest.raises(ValueError, match="prices.gpu_hour must be a finite, non-negative number"):
        Sweep.from_json(tmp_path, {"models": ["cnn"], "prices": {"gpu_hour": -1}}, [])
