"""A run's result as one declared type, and a metric added end to end: `best_epoch`, from the loop's history to
result.json, comparison.csv|json|md and the report's table."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from jobs.engine.run.cluster import Workers
from jobs.engine.run_result import RunResult, build_result, compared_fields
from jobs.engine.train.summary import best_epoch
from tests.report_cache import reports_fixture  # noqa: F401 -- the `reports` fixture
from tune.analysis.significance import N_RESAMPLES


def history(*accuracies: float) -> list[dict]:
    return [{"epoch": i + 1, "val_accuracy": acc} for i, acc in enumerate(accuracies)]


def test_best_epoch_is_the_first_epoch_of_the_highest_validation_accuracy():
    assert best_epoch(history(0.90, 0.97, 0.95)) == 2
    assert best_epoch(history(0.90, 0.97, 0.97)) == 2  # the first of equals: later epochs added nothing
    assert best_epoch(history(0.5)) == 1
    assert best_epoch([]) is None


def summary(**extra) -> dict:
    return {"history": history(0.9, 0.95), "train_time_s": 3.0, "config": {"lr": 0.1}, "images_per_s": 10.0,
            "params": 7, "peak_memory_mb": 1.0, "device": "cpu", "validation": {"accuracy": 0.95},
            "test": {"accuracy": 0.96, "f1_macro": 0.95, "loss": 0.1, "predictions": [1], "labels": [1]}, **extra}


def test_a_summary_key_that_is_a_field_reaches_result_json_as_it_is():
    result = build_result("cnn", {}, summary(best_epoch=2, not_a_field=1), Workers(1, False, 1.0), 4.0)
    assert result.best_epoch == 2 and result.test_accuracy == 0.96 and result.epochs == 2
    record = result.to_json()
    assert record["best_epoch"] == 2 and "not_a_field" not in record
    assert RunResult.from_json(json.loads(json.dumps(record))) == result
    # A result.json of an earlier version (no best_epoch) still reads, the metric unknown.
    old = {k: v for k, v in record.items() if k != "best_epoch"}
    assert RunResult.from_json(old).best_epoch is None
    with pytest.raises(ValueError, match="not a run result"):
        RunResult.from_json({"test_accuracy": 0.9})


def test_best_epoch_reaches_the_comparison_files_and_the_report(reports):
    assert "best_epoch" in dict(compared_fields())
    # clear_winner at 2 seeds as tests/test_report_trust.py reports it (its timeline stamped, which leaves the
    # epochs alone), once a session (tests/report_cache.py).
    report = reports.built("clear_winner", seeds=2, slots=2, n_resamples=N_RESAMPLES)[1]
    table = pd.read_csv(report.files["comparison_csv"]).set_index("model")
    # The fixture's best epochs are (epochs, epochs - 1) for seeds 0 and 1: their mean is epochs - 0.5.
    assert table.loc["cnn", "best_epoch"] == pytest.approx(2.5)
    rows = {r["model"]: r for r in json.loads(report.files["comparison_json"].read_text())}
    assert rows["resnet18"]["best_epoch"] == pytest.approx(2.5) and rows["alexnet"]["best_epoch"] is None
    assert "| Best epoch |" in report.files["comparison_md"].read_text()
    html = report.files["report_html"].read_text()
    assert ">Best epoch<" in html
