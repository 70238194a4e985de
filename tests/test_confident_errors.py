"""The confidently-wrong count, end to end: the measurement (jobs/engine/measure/confident_errors.py, found by the
room's registry), its RunResult field in result.json and the comparison, and its report section
(tune/report/confident_errors.py with its partial), on a synthetic sweep with and without the field recorded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from jobs.engine.measure.confident_errors import CONFIDENCE, confident_errors
from jobs.engine.measure.final_evaluation import PREDICTIONS_FILE
from jobs.engine.measure.registry import on_predictions, prediction_measures
from jobs.engine.run_result import RESULT_FILE
from tests.report_cache import PAGE_RESAMPLES, reports_fixture  # noqa: F401 -- the `reports` fixture
from tests.test_report_trust import card, rows
from tune.analysis.significance import N_RESAMPLES
from tune.report.sections import sections
from tune.report.write import write_report


def test_counts_only_the_wrong_answers_above_the_confidence():
    labels = np.array([0, 1, 2, 3, 4])
    predicted = np.array([0, 2, 1, 3, 0])  # images 1, 2 and 4 are wrong
    top = np.array([0.99, 0.95, CONFIDENCE, 0.5, 0.91])  # image 2 sits at the bound: not above it
    probabilities = np.full((5, 10), 0.0)
    probabilities[np.arange(5), predicted] = top
    probabilities[np.arange(5), (predicted + 1) % 10] = 1 - top
    assert confident_errors(labels, predicted, probabilities) == {"confident_errors": 2}  # images 1 and 4
    assert confident_errors(labels, predicted, None) == {}  # the detector has no softmax over digits


def test_the_room_finds_each_measurement_and_refuses_a_second_of_one_name():
    found = prediction_measures()
    assert {"calibration", "confident_errors"} <= set(found)
    assert found["confident_errors"] is confident_errors
    with pytest.raises(ValueError, match="two final measurements are called 'confident_errors'"):
        on_predictions("confident_errors")(lambda labels, predicted, probabilities: {})


def expected_counts(folder: Path) -> dict[str, float]:
    """Per model with probabilities, the mean over its seeds of the images wrong at top probability > 0.9, read
    from predictions.npz by hand (float16 on disk, renormalised as the report reads it)."""
    counts: dict[str, list[int]] = {}
    for path in sorted(folder.glob(f"final/*/seed*/{PREDICTIONS_FILE}")):
        with np.load(path) as npz:
            if "probabilities" not in npz:
                continue
            p = npz["probabilities"].astype(np.float64)
            p /= p.sum(axis=1, keepdims=True)
            wrong = npz["predictions"] != npz["labels"]
            counts.setdefault(path.parent.parent.name, []).append(int((wrong & (p.max(axis=1) > 0.9)).sum()))
    return {model: float(np.mean(c)) for model, c in counts.items()}


def page_counts(report: dict) -> dict[str, str]:
    text = Path(report.files["report_html"]).read_text()
    return {row[0]: row[1] for row in rows(card(text, "confident-errors"), "calib")}


def test_the_section_recomputes_an_older_sweeps_count_from_its_predictions(reports, tmp_path):
    # The synthetic sweep's result.json files predate the field: the section counts from predictions.npz.
    # The very render tests/test_report_trust.py reads (cached once a session): no render of its own.
    folder, report = reports.built("clear_winner", seeds=2, slots=2, n_resamples=N_RESAMPLES)
    expected = expected_counts(folder)
    assert set(expected) == {"resnet18", "cnn", "vit"} and any(expected.values())  # not the detector
    shown = page_counts(report)
    assert set(shown) == set(expected)
    for model, count in expected.items():
        assert float(shown[model].replace(",", "")) == pytest.approx(count, abs=0.05), model
    assert any(s.name == "confident_errors" for s in sections())


def test_a_recorded_count_reaches_the_comparison_and_the_page(reports, tmp_path):
    folder = reports.copy(tmp_path / "out", "clear_winner", seeds=2)
    for path in folder.glob(f"final/*/seed*/{RESULT_FILE}"):
        result = json.loads(path.read_text())
        if result["model"] == "cnn":
            result["confident_errors"] = 7 if path.parent.name == "seed0" else 8
            path.write_text(json.dumps(result))
    report = write_report(folder, n_resamples=PAGE_RESAMPLES)
    comparison = {row["model"]: row for row in json.loads((folder / "comparison.json").read_text())}
    assert comparison["cnn"]["confident_errors"] == pytest.approx(7.5)
    assert page_counts(report)["cnn"] == "7.5"  # what result.json recorded, not a recount


def test_without_any_classifier_the_section_is_left_off(reports, tmp_path):
    folder = reports.copy(tmp_path / "out", "clear_winner", seeds=1)
    for model in ("resnet18", "cnn", "vit"):
        shutil.rmtree(folder / "final" / model)
    text = Path(write_report(folder, n_resamples=PAGE_RESAMPLES).files["report_html"]).read_text()
    assert '<section id="confident-errors"' not in text
