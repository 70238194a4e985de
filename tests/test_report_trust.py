"""A comparison you can trust and see: the report's statistics over every pair and seed, what the search learned,
errors in pictures, calibration and robustness, each rebuilt from a sweep folder alone (tests/sweep_fixture writes
predictions.npz beside every result.json, as a final run does)."""

from __future__ import annotations

import html
import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from jobs.engine.measure.final_evaluation import PREDICTIONS_FILE
from jobs.report import write_report
from tests.report_cache import PAGE_RESAMPLES, reports_fixture  # noqa: F401 -- the `reports` fixture
from tests.sweep_fixture import FAILED_REASON, digits
from tune.analysis.results import load_results
from tune.analysis.search_insights import asha_savings
from tune.analysis.significance import N_RESAMPLES
from tune.report.errors import right_where_wrong
from tune.report.predictions import Predictions, SweepPredictions, read_predictions, sweep_predictions
from tune.report.search import search_points
from tune.report.statistics import compute
from tune.sweep.trials import TrialRecord

TRUST = ("statistics", "search-learned", "validation-curves", "errors", "calibration", "robustness")
TRAINED = ["resnet18", "cnn", "faster_rcnn", "vit"]  # clear_winner's trained models, best first
MAX_PAGE_BYTES = 5_000_000


def card(text: str, anchor: str) -> str:
    return text.split(f'<section id="{anchor}"', 1)[1].split("</section>", 1)[0]


def rows(html: str, table_class: str) -> list[list[str]]:
    """The body rows of the table of that class, as the text of their cells."""
    body = html.split(f'<table class="{table_class}">', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def number(cell: str) -> float:
    return float(cell.replace(",", ""))


@pytest.fixture(params=[1, 2], ids=["1-seed", "2-seeds"])
def built(request, reports) -> tuple[Path, str, int]:
    """clear_winner with 1 and with 2 seeds, its timeline stamped, reported once a session (tests/report_cache.py)
    at the real number of bootstrap resamples: these tests read the statistics on the page."""
    folder, report = reports.built("clear_winner", seeds=request.param, slots=2, n_resamples=N_RESAMPLES)
    return folder, Path(report.files["report_html"]).read_text(), request.param


def render(folder: Path) -> dict:
    """write_report for a test that reads the page, not the bootstrap (tests/report_cache.py PAGE_RESAMPLES)."""
    return write_report(folder, n_resamples=PAGE_RESAMPLES)


# ---- every section, at 1 and at 2 seeds -----------------------------------------------------------------------

def test_every_section_is_on_the_page_with_its_figures(built):
    _, text, _ = built
    for anchor in TRUST:
        assert f'<section id="{anchor}"' in text, anchor
    assert card(text, "search-learned").count("<img ") == 5  # a parallel-coordinates figure per architecture
    assert card(text, "errors").count("<img ") == 3 + 2 + 1  # 3 classifiers, 2 ways, the detector's canvases
    for anchor in ("validation-curves", "calibration", "robustness"):
        assert card(text, anchor).count("<img ") == 1, anchor
    assert len(text.encode()) < MAX_PAGE_BYTES


def test_a_bootstrap_interval_and_a_chance_of_being_best_per_model(built):
    _, text, seeds = built
    stats = card(text, "statistics")
    table = rows(stats, "stats")
    assert [r[0] for r in table] == TRAINED
    assert ("95% interval, seeds × images" in stats) == (seeds > 1)
    assert f"Percentile bootstrap over {N_RESAMPLES:,} resamples" in stats  # the real default, as a sweep reports
    chances = []
    for model, images, seeds_cell, accuracy, *intervals, chance in table:
        assert images == "1,000" and seeds_cell == str(seeds)
        for interval in intervals:
            low, high = (float(x) for x in interval.rstrip("%").split("–"))
            assert low <= float(accuracy.rstrip("%")) <= high, (model, interval)
        chances.append(chance)
    assert chances[0] in ("> 99%", "100%")


def test_every_pair_is_tested_and_holm_never_lowers_a_p_value(built):
    _, text, seeds = built
    pairs = rows(card(text, "statistics"), "pairs")
    assert len(pairs) == math.comb(len(TRAINED), 2)
    assert [(a, b) for a, b, *_ in pairs] == list(itertools.combinations(TRAINED, 2))
    for a, b, only_a, only_b, n, method, p, p_holm, verdict in pairs:
        assert number(n) == 1000 * seeds and method in ("χ²", "exact", "never disagree")
        assert number(p_holm) >= number(p)
        assert verdict == (f"{a if number(only_a) > number(only_b) else b} better" if number(p_holm) < 0.05
                           else "not separated")


def test_the_statistics_match_the_predictions_the_runs_kept(built):
    folder, _, seeds = built
    results = load_results(folder)
    predictions = sweep_predictions(folder, results.finals)
    stats = compute(TRAINED, predictions, n_resamples=200)
    for model in TRAINED:
        runs = [json.loads((folder / "final" / model / f"seed{k}" / "result.json").read_text()) for k in range(seeds)]
        assert stats.of(model).accuracy == pytest.approx(np.mean([r["test_accuracy"] for r in runs]))
        assert (stats.of(model).over_seeds is None) == (seeds == 1)
    raw = [p.test.pooled.p_value for p in stats.pairs]
    assert all(p.p_holm >= q for p, q in zip(stats.pairs, raw, strict=True))
    assert min(p.p_holm for p in stats.pairs) == pytest.approx(min(1.0, min(raw) * len(raw)))
    assert stats.top.a == "resnet18" and stats.top.b == "cnn" and stats.top.test.seeds == list(range(seeds))
    assert sum(s.p_best for s in stats.models) == pytest.approx(1.0)


def test_what_the_search_learned(built):
    folder, text, _ = built
    learned = card(text, "search-learned")
    budget = {r[0]: r for r in rows(learned, "budget")}
    assert list(budget) == [*TRAINED, "alexnet"]
    model, accuracy, held, stopped, used, to_the_end = budget["cnn"]
    compared = {r["model"]: r for r in json.loads((folder / "comparison.json").read_text())}
    assert accuracy == f"{compared['cnn']['test_accuracy'] * 100:.2f}%"
    assert held.endswith("CPU·s") and number(held.split()[0]) > 0
    # One trial of each trained model was stopped by ASHA; the estimate is said to be one.
    assert stopped == "1" and to_the_end.endswith("(est.)") and number(to_the_end.split()[0]) > number(used.split()[0])
    assert "is an estimate" in learned
    assert "fANOVA over 3 trials that ran to the end" in learned
    assert re.search(r"(lr|weight_decay) \S+ is the (top|bottom) of its range \[\S+, \S+\]: widen it", learned)


def test_calibration_and_robustness_tables(built):
    folder, text, seeds = built
    calibration = {r[0]: r for r in rows(card(text, "calibration"), "calib")}
    assert list(calibration) == ["resnet18", "cnn", "vit"]  # the detector has no probabilities
    runs = [json.loads((folder / "final" / "cnn" / f"seed{k}" / "result.json").read_text()) for k in range(seeds)]
    assert calibration["cnn"][3] == f"{np.mean([r['ece'] for r in runs]):.4f}"
    robust = html.unescape(card(text, "robustness"))
    table = rows(robust, "robust")
    assert [r[0] for r in table] == TRAINED and all(len(r) == 1 + 1 + 8 + 1 for r in table)
    for heading in ("shift", "rotate", "noise", "impulse", "blur", "contrast", "invert", "Mean"):
        assert f"<th>{heading}</th>" in robust
    # resnet18 is the most accurate on clean digits but fragile: under corruption the ranking changes.
    assert "Under corruption the ranking changes" in robust and "corruptions cnn > faster_rcnn > resnet18" in robust


def test_errors_in_pictures(built):
    folder, text, _ = built
    errors = card(text, "errors")
    cnn = read_predictions(folder / "final" / "cnn" / "seed0")
    resnet = read_predictions(folder / "final" / "resnet18" / "seed0")
    assert f"the 20 most confident of its {int((~cnn.correct).sum())} errors" in errors
    both = int((resnet.correct & ~cnn.correct).sum()), int((cnn.correct & ~resnet.correct).sum())
    assert f"resnet18 right, cnn wrong: {both[0]} images at seed 0" in errors
    assert f"cnn right, resnet18 wrong: {both[1]} image{'s' if both[1] != 1 else ''} at seed 0" in errors
    assert "faster_rcnn: boxes on test canvases" in errors
    # The images each way draws: the wrong model's kept errors on which the other is right, the same test digits.
    index, images = right_where_wrong(resnet, cnn)
    assert len(index) == both[0] and resnet.correct[index].all() and not cnn.correct[index].any()
    assert (images == digits(cnn.labels)[index]).all()


def test_the_footer_says_what_runs_held_not_the_planned_worker(built):
    _, text, _ = built
    footer = text.split('<footer id="environment">', 1)[1]
    assert "Each search trial held 1 CPU; each retrain held 1 CPU." in footer
    assert "cpus_per_worker" not in text and "workers 1" not in footer
    assert "Each search trial held 1 CPU." in card(text, "timeline")  # the timeline says the same


# ---- one sweep folder, odd cases -----------------------------------------------------------------------------

def test_jobs_report_rebuilds_every_section_from_the_folder_alone(reports):
    # `python -m jobs.report` on a copy of the sweep away from where it was written (nothing may depend on where
    # the sweep ran), run in this process once a session (tests/report_cache.py; tests/test_report.py runs the module).
    moved, proc = reports.cli("close_call", seeds=2)
    assert proc.returncode == 0, proc.stderr
    text = html.unescape((moved / "report.html").read_text())
    for anchor in TRUST:
        assert f'<section id="{anchor}"' in text, anchor
    assert "Corruption does not change the ranking: cnn > resnet18 > vit" in text
    assert "p, Holm" in text and len(text.encode()) < MAX_PAGE_BYTES
    # cnn and resnet18 are one image apart: not separated, and the page says what it would take.
    printed = " ".join(proc.stdout.split())  # the summary is wrapped for a terminal
    assert "gap is not significant at the 0.05 level" in printed
    separation = r"needs about [\d,]+ image pairs: [\d,]+ more test images at 2 seed\(s\), or [\d,]+ more seeds"
    assert re.search(separation, printed) and re.search(separation, card(text, "statistics"))


def test_each_failure_is_said_once_without_the_model_name_twice(reports, tmp_path):
    folder = reports.copy(tmp_path / "out", "clear_winner", seeds=1)
    sweep = json.loads((folder / "sweep.json").read_text())
    sweep["status"]["alexnet"]["reason"] = f"alexnet: alexnet: {FAILED_REASON}"  # as a real sweep words it
    (folder / "sweep.json").write_text(json.dumps(sweep))
    report = render(folder)
    text = (folder / "report.html").read_text()
    assert text.count(FAILED_REASON) == 1 and "alexnet: alexnet" not in text
    assert f"<strong>alexnet</strong>: {FAILED_REASON}" in card(text, "failures")
    assert "could not be trained; why is under Failures below" in card(text, "summary")
    # The command line says it briefly (its first clause) and points to the page, where it is said in full.
    assert (f"alexnet could not be trained: {FAILED_REASON.split(' (')[0]}; report.html's Failures section has the "
            "full message.") in " ".join(report.summary.split())
    assert text.count("RayTaskError: worker died (OOM)") == 1


def test_the_search_figure_has_a_point_per_trial_when_trials_last_one_epoch(reports, tmp_path):
    folder = reports.copy(tmp_path / "out", "cheap_runner_up", seeds=1)
    trials = json.loads((folder / "trials.json").read_text())
    for trial in trials:
        trial["history"] = trial["history"][:1]
        trial["epochs_run"] = 1
    (folder / "trials.json").write_text(json.dumps(trials))
    points = search_points(load_results(folder))
    assert set(points) == {"cnn", "resnet18"}
    for model, found in points.items():
        assert len(found) == 4 and len({y for _, y in found}) > 1, model  # a point per trial, not one per model
    text = Path(render(folder).files["report_html"]).read_text()
    assert card(text, "validation-curves").count("<img ") == 1


def test_models_tested_on_different_images_are_named_not_paired(reports, tmp_path):
    folder = reports.copy(tmp_path / "out", "close_call", seeds=1)
    run = folder / "final" / "resnet18" / "seed0"  # as if retrained with test_limit 500
    arrays = dict(np.load(run / PREDICTIONS_FILE))
    keep = arrays["error_indices"] < 500
    arrays |= {"labels": arrays["labels"][:500], "predictions": arrays["predictions"][:500],
               "probabilities": arrays["probabilities"][:500], "error_indices": arrays["error_indices"][keep],
               "error_images": arrays["error_images"][keep]}
    np.savez_compressed(run / PREDICTIONS_FILE, **arrays)
    result = json.loads((run / "result.json").read_text())
    result |= {"test_labels": result["test_labels"][:500], "test_predictions": result["test_predictions"][:500]}
    (run / "result.json").write_text(json.dumps(result))
    report = render(folder)
    text = (folder / "report.html").read_text()
    pairs = {(r[0], r[1]): r[2:] for r in rows(card(text, "statistics"), "pairs")}
    assert pairs[("cnn", "resnet18")] == ["tested on different images (1,000 and 500): cannot be paired"]
    assert pairs[("resnet18", "vit")] == ["tested on different images (500 and 1,000): cannot be paired"]
    assert len(pairs[("cnn", "vit")]) == 7  # the pair on the same images is tested
    assert ("resnet18 was tested on other images than cnn (500 and 1,000), so the two cannot be paired; the next "
            "model tested on the same images as cnn is vit") in " ".join(report.summary.split())
    assert "Where the top two disagree: cnn and vit" in text


def test_an_older_sweep_without_predictions_npz_still_gets_its_statistics(reports, tmp_path):
    folder = reports.copy(tmp_path / "out", "cheap_runner_up", seeds=2)
    for path in folder.glob(f"final/*/seed*/{PREDICTIONS_FILE}"):
        path.unlink()
    sweep = json.loads((folder / "sweep.json").read_text())
    del sweep["spaces"]  # before --space was recorded: tune/sweep/spaces.py's spaces
    (folder / "sweep.json").write_text(json.dumps(sweep))
    text = Path(render(folder).files["report_html"]).read_text()
    assert len(rows(card(text, "statistics"), "pairs")) == 1
    assert "No final run kept its test images" in card(text, "errors")
    assert 'id="calibration"' in text  # ECE, NLL and Brier from result.json, without a diagram
    assert "Reliability diagram" not in text
    learned = html.unescape(card(text, "search-learned"))
    assert learned.count("<img ") == 2
    assert "cnn's 4 search trials: one line per trial across its hyperparameters lr, batch_size and" in learned


# ---- the pieces -----------------------------------------------------------------------------------------------

def test_read_predictions(tmp_path):
    assert read_predictions(tmp_path) is None
    probabilities = np.array([[0.7, 0.3], [0.2, 0.8]], dtype=np.float16)
    np.savez(tmp_path / PREDICTIONS_FILE, labels=np.array([0, 0], np.int16), predictions=np.array([0, 1], np.int16),
             probabilities=probabilities, error_indices=np.array([1], np.int32),
             error_images=np.zeros((1, 28, 28), np.uint8))
    found = read_predictions(tmp_path)
    assert found.correct.tolist() == [True, False] and found.detection is None
    assert np.allclose(found.probabilities.sum(axis=1), 1.0) and found.error_indices.tolist() == [1]
    (tmp_path / PREDICTIONS_FILE).write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not readable"):
        read_predictions(tmp_path)


def test_few_discordant_images_get_the_exact_test():
    labels = np.zeros(100, dtype=np.int64)

    def run(wrong: list[int]) -> Predictions:
        predictions = labels.copy()
        predictions[wrong] = 1
        return Predictions(labels, predictions)

    found = SweepPredictions({"a": {0: run([1, 2])}, "b": {0: run([3, 4, 5, 6, 7, 8])}}, {})
    stats = compute(["a", "b"], found, n_resamples=100)
    pair = stats.pairs[0]
    assert pair.test.pooled.method == "exact binomial" and (pair.test.pooled.b, pair.test.pooled.c) == (6, 2)
    assert pair.p_holm == pair.test.pooled.p_value  # one pair: nothing to adjust
    assert stats.separation is not None and stats.separation.more_images > 0


def test_asha_savings_estimates_from_the_finished_trials():
    def trial(status: str, seconds: float, cpus: float = 1.0) -> TrialRecord:
        return TrialRecord(model="m", trial_id=status, status=status, resources={"CPU": cpus},
                           started_at="2025-01-01T00:00:00+00:00",
                           finished_at=f"2025-01-01T00:00:{seconds:02.0f}+00:00")

    saved = asha_savings([trial("ok", 40), trial("ok", 20), trial("stopped", 10, 2.0), trial("stopped", 5),
                          trial("failed", 3)], "m")
    # Stopped: 10 s x 2 CPUs + 5 s x 1 CPU held; to the end at the finished mean of 30 s: 30 x 2 + 30 x 1.
    assert (saved.stopped, saved.finished, saved.resource) == (2, 2, "CPU")
    assert (saved.used_s, saved.to_the_end_s, saved.saved_s) == (25.0, 90.0, 65.0)
    assert asha_savings([trial("stopped", 5)], "m").to_the_end_s is None  # nothing finished to estimate from
