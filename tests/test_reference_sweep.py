"""What one real sweep leaves behind (tests/reference_sweep.py, run once per session): its folder and `latest`, the
failed trials recorded, ASHA's stops within an epoch, architectures searched at the same time, each trial's
start-up, how busy the cluster was, the final retrains and their checks, the rows of models that could not train,
the report, `jobs.report` rebuilding it, and a resume of the finished sweep doing nothing."""

from __future__ import annotations

import json
import shutil
from datetime import datetime

import numpy as np
import pytest
import torch

from jobs.engine.measure.final_evaluation import ONNX_FILE, PREDICTIONS_FILE
from tests.reference_sweep import MODELS, TRAINED, copy_of, snapshot, sweep_folders
from tune.analysis.comparison import fmt_accuracy

pytestmark = pytest.mark.slow  # every test here needs the session's reference sweep
OUTPUT_FILES = ("sweep.json", "trials.json", "comparison.csv", "comparison.json", "comparison.md", "report.html")


def rows_of(reference) -> dict[str, dict]:
    return {row["model"]: row for row in reference.load("comparison.json")}


def test_the_sweep_has_its_own_folder_with_every_file_and_latest_points_to_it(reference_sweep):
    output, folder = reference_sweep.output, reference_sweep.folder
    assert (output / "latest").resolve() == folder and sweep_folders(output) == [folder]
    for name in OUTPUT_FILES:
        assert (folder / name).is_file(), name
    sweep = reference_sweep.load("sweep.json")
    # No --storage: "" recorded, the sweep folder's own tune/ wherever the folder is (a copy resumes itself).
    assert sweep["storage"] == "" and sweep["name"] == folder.name and sweep["samples"] == 1
    assert sweep["search"] == "grid" and sweep["models"] == list(MODELS)
    for model in TRAINED:  # Tune's trials went inside the sweep's folder
        assert (folder / "tune" / sweep["name"] / model).is_dir(), model


def test_a_failing_trial_is_recorded_and_the_search_goes_on(reference_sweep):
    trials = reference_sweep.trials("cnn")
    assert len(trials) == 4  # the grid: 2 learning rates x fail_at_epoch -1 or 0
    for trial in trials:
        if trial["config"]["fail_at_epoch"] == 0:
            assert trial["status"] == "failed" and "injected failure at epoch 0" in trial["error"], trial
    good = next(t for t in trials if t["config"] == {"lr": 3e-3, "fail_at_epoch": -1})
    assert good["status"] == "ok" and good["val_accuracy"] > 0.3
    status = reference_sweep.load("sweep.json")["status"]["cnn"]
    assert status["status"] == "ok" and status["failed_trials"] == 2
    assert status["best_config"] == {"lr": 3e-3, "fail_at_epoch": -1} and status["best_trial_id"] == good["trial_id"]
    row = rows_of(reference_sweep)["cnn"]
    assert row["failed_trials"] == 2 and row["trials"] == 4 and row["test_accuracy"] > 0.3
    assert "FAILED (recorded, the sweep goes on)" in reference_sweep.stdout
    # A failure of the trial's own is not a lost node: Tune's queued rerun is its only one (each is a new process),
    # and it fails at once with the recorded reason; Tune's error.txt numbers every run that failed.
    errors = sorted((reference_sweep.folder / "tune").rglob("cnn_trial_*fail_at_epoch=0*/error.txt"))
    assert len(errors) == 2
    for error in errors:
        runs = [line for line in error.read_text().splitlines() if line.startswith("Failure # ")]
        assert len(runs) == 2, error.read_text()[-2000:]
        assert "OwnFailure: RuntimeError: injected failure at epoch 0" in error.read_text()


def test_asha_stops_a_weak_one_epoch_trial_at_a_check_within_the_epoch(reference_sweep):
    # Before: one report per epoch, so in one-epoch trials max_t equalled the grace period and ASHA stopped nothing.
    trials = reference_sweep.trials("cnn")
    (stopped,) = [t for t in trials if t["status"] == "stopped"]
    assert stopped["config"] == {"lr": 1e-5, "fail_at_epoch": -1}  # lr 1e-5 stays near chance
    assert stopped["epochs_run"] < 1 and "stopped early by ASHA" in reference_sweep.stdout
    # A stopped trial's history has its checks within the epoch: fractional epochs, one report each.
    assert stopped["history"] and all(0 < h["epoch"] < 1 for h in stopped["history"])
    (finished,) = [t for t in trials if t["status"] == "ok"]
    assert [h["epoch"] for h in finished["history"]] == [0.25, 0.5, 0.75, 1.0]


def test_architectures_are_searched_at_the_same_time_and_each_trial_records_its_start_up(reference_sweep):
    trials = reference_sweep.load("trials.json")
    spans = [(t["model"], datetime.fromisoformat(t["started_at"]), datetime.fromisoformat(t["finished_at"]))
             for t in trials]
    overlapping = {frozenset((a, b)) for a, start_a, end_a in spans for b, start_b, end_b in spans
                   if a != b and start_a < end_b and start_b < end_a}
    assert overlapping, spans
    assert all(t["resources"] == {"CPU": 1.0} for t in trials)
    # Each trial's start-up (its start to its first training step) is recorded and lies within the trial; a trial
    # that failed before its first step has none.
    for (_, start, end), trial in zip(spans, trials, strict=True):
        if trial["status"] == "failed":
            continue
        assert 0 <= trial["startup_s"] < (end - start).total_seconds(), trial


def test_the_sweep_records_how_busy_its_cluster_was(reference_sweep):
    sweep = reference_sweep.load("sweep.json")
    assert sweep["cluster_resources"]["CPU"] >= 1 and 0 < sweep["cluster_busy"] <= 1
    assert 0 < sweep["wall_time_s"] < reference_sweep.seconds


def test_each_trained_model_is_retrained_on_train_and_validation_and_tested(reference_sweep):
    rows = rows_of(reference_sweep)
    assert set(rows) == set(MODELS)
    for model in TRAINED:
        result = json.loads((reference_sweep.folder / "final" / model / "seed0" / "result.json").read_text())
        assert result["config"]["train_on_val"] and result["config"]["evaluate_test"] and result["config"]["seed"] == 0
        assert result["resources"] == {"CPU": 1.0} and result["started_at"] < result["finished_at"]
        assert rows[model]["status"] == "ok" and rows[model]["params"] > 0 and rows[model]["images_per_s"] > 0
    # A smoke epoch is a plumbing check, but the classifiers must have learnt something: these floors sit well
    # below what the seeded runs reach and well above chance (10%). The detector is only checked for its mAP.
    for model, floor in {"cnn": 0.3, "vit": 0.3}.items():
        assert rows[model]["test_accuracy"] > floor, rows[model]
        assert len(json.loads((reference_sweep.folder / "final" / model / "seed0" / "result.json").read_text())[
            "test_labels"]) == 1000  # --set test_limit=1000
    assert 0 <= rows["faster_rcnn"]["test_map"] <= rows["faster_rcnn"]["test_map_50"] <= 1, rows["faster_rcnn"]


def test_a_final_run_measures_serving_compute_onnx_calibration_and_robustness(reference_sweep):
    run = reference_sweep.folder / "final" / "cnn" / "seed0"
    result = json.loads((run / "result.json").read_text())
    assert result["final_evaluation_errors"] == {}
    assert 0 < result["latency_ms_p50"] <= result["latency_ms_p95"] and result["throughput_per_s"] > 0
    assert result["serving"]["latency_calls"] >= 100 and result["serving"]["threads"] >= 1
    assert result["gflops_per_image"] > 0 and result["model_size_mb"] > 0 and result["train_flops"] > 0
    assert result["onnx_agreement"] >= 0.999 and result["onnx"]["path"] == ONNX_FILE
    assert 0 <= result["ece"] <= 1 and result["nll"] > 0 and 0 <= result["brier"] <= 2
    # The registered measurements (jobs/engine/measure/registry.py) ran: the confidently wrong count, recounted.
    with np.load(run / PREDICTIONS_FILE) as kept:
        wrong = kept["predictions"] != kept["labels"]
        sure = kept["probabilities"].astype(np.float32).max(axis=1) > 0.9
    assert result["confident_errors"] == pytest.approx(int((wrong & sure).sum()), abs=2)  # float16 on disk
    detector = json.loads((reference_sweep.folder / "final" / "faster_rcnn" / "seed0" / "result.json").read_text())
    assert detector["confident_errors"] is None and detector["final_evaluation_errors"] == {}
    assert set(result["robustness"]) >= {"shift", "rotate", "scale", "gaussian_noise", "blur", "contrast", "invert"}
    for name in (PREDICTIONS_FILE, ONNX_FILE):  # beside result.json, moved out of the retrain's checkpoint
        assert (run / name).is_file() and not (run / "checkpoint" / name).exists()
    assert (run / "checkpoint" / "checkpoint.pt").is_file()  # the retrained weights stay


def test_the_search_keeps_its_trials_results_not_their_checkpoints_and_a_retrain_its_weights(reference_sweep):
    """The sweep's disk, bounded (issue 25): said before training; each architecture's trial checkpoints removed
    once its best trial is chosen, every trial's results kept; a finished retrain keeps no optimizer state."""
    folder, out = reference_sweep.folder, reference_sweep.stdout
    assert out.index("disk: this sweep needs at most ") < out.index(" trial ")
    for model in TRAINED:
        assert f"{model}: best trial chosen; its trials' checkpoints removed (" in out, model
    assert not list((folder / "tune").rglob("checkpoint_0*"))
    trials = reference_sweep.load("trials.json")
    assert len(list((folder / "tune").rglob("params.json"))) == len(trials)  # trials.json's and TensorBoard's source
    # Each trial's record carries the driver's stamps as written when it started and ended (a resume reads them).
    stamps = [json.loads(p.read_text()) for p in (folder / "tune").rglob("driver_times.json")]
    assert {(t["trial_id"], t["started_at"], t["finished_at"]) for t in stamps} == {
        (t["trial_id"], t["started_at"], t["finished_at"]) for t in trials}
    weights = 0
    for model in TRAINED:
        saved = torch.load(folder / "final" / model / "seed0" / "checkpoint" / "checkpoint.pt", weights_only=False,
                           mmap=True)
        assert saved["optimizer"]["state"] == {} and saved["optimizer"]["param_groups"], model
        weights += sum(v.numel() * v.element_size() for v in saved["model"].values())
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    # A regression guard: the weights twice (checkpoint.pt and model.onnx) and some MB of results and logs. With
    # every trial's checkpoints and the retrains' AdamW state kept it was over three times the weights more.
    assert size < 2 * weights + 16e6, (size, weights)


def test_models_that_cannot_train_get_rows_that_say_why(reference_sweep):
    rows = rows_of(reference_sweep)
    for name in ("vgg16", "alexnet"):  # no ImageNet weights, and the download fails behind the dead proxy
        assert rows[name]["status"] == "failed" and "ImageNet weights not found" in rows[name]["reason"]
        assert not (reference_sweep.folder / "final" / name).exists()
    assert "cannot be trained here" in reference_sweep.stdout


def test_the_report_shows_this_sweep(reference_sweep):
    rows, html = rows_of(reference_sweep), (reference_sweep.folder / "report.html").read_text()
    for name in ("cnn", "vit"):  # each trained model's own accuracy is in the report, not only its name
        assert fmt_accuracy(rows[name]["test_accuracy"], rows[name]["test_accuracy_std"]) in html, name
    assert html.count("ImageNet weights not found") >= 2
    assert 'id="timeline"' in html and "fail_at_epoch" in html  # the searched key, in the search section
    assert f"report: {reference_sweep.folder / 'report.html'}" in reference_sweep.stdout


def test_jobs_report_rebuilds_the_comparison_and_the_report_from_the_folder_alone(reference_sweep, tmp_path, capsys):
    from jobs.engine.errors import UsageError
    from jobs.report import main as report_main

    output = copy_of(reference_sweep, tmp_path)
    folder = output / reference_sweep.folder.name
    for name in OUTPUT_FILES[2:]:
        (folder / name).unlink()
    # Torn records (issue 25): a result.json copied half-way and a trials.json emptied are named, left out and left
    # where they are (a resume redoes them); a comparison.json cut short is rebuilt whole.
    result = folder / "final" / "vit" / "seed0" / "result.json"
    result.write_bytes(result.read_bytes()[:5000])
    (folder / "trials.json").write_text("")
    (folder / "comparison.json").write_text('[{"model": "cnn", ')
    assert report_main([str(output)]) == 0  # OUTPUT means its latest sweep
    out = capsys.readouterr().out
    assert f"wrote {folder / 'report.html'}" in out
    assert f"{result}: torn record (not whole JSON: " in out and "left out of this report" in out
    assert f"{folder / 'trials.json'}: torn record (empty), left out of this report" in out
    assert len(result.read_bytes()) == 5000 and (folder / "trials.json").read_text() == ""
    for name in OUTPUT_FILES[2:]:
        assert (folder / name).is_file(), name
    rows = {row["model"]: row for row in json.loads((folder / "comparison.json").read_text())}
    assert rows["vit"]["test_accuracy"] is None and rows_of(reference_sweep)["vit"]["test_accuracy"] > 0
    for model in ("cnn", "faster_rcnn"):
        assert rows[model]["test_accuracy"] == rows_of(reference_sweep)[model]["test_accuracy"], model
    (folder / "sweep.json").write_text('{"models": ["cnn"')  # torn, and nothing to rebuild it from: an error line
    with pytest.raises(UsageError, match="sweep.json is not valid JSON"):
        report_main([str(output)])


def test_resuming_a_finished_sweep_does_nothing(reference_sweep, ray_local, mnist_dir, tmp_path, capsys,
                                                monkeypatch):
    from jobs.sweep import main
    from tests.reference_sweep import behind_a_dead_proxy

    # As where it ran: no ImageNet weights (the session's TORCH_HOME has fakes) and no way to download them, so the
    # models that could not train are tried again, fail again at once, and nothing else runs.
    for key, value in {**behind_a_dead_proxy(), "TORCH_HOME": str(tmp_path / "empty-torch-home")}.items():
        monkeypatch.setenv(key, value)
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    output = copy_of(reference_sweep, tmp_path)
    folder = output / reference_sweep.folder.name
    before = snapshot(folder / "final") | {"trials.json": (folder / "trials.json").read_bytes()}
    shutil.rmtree(folder / "tune")  # nothing may need the search's state: no trial runs again
    assert main(["--resume", str(folder), "--data-dir", str(mnist_dir)]) == 0
    out = capsys.readouterr().out
    for model in TRAINED:
        assert f"{model}: already done in this sweep, kept" in out
    for model in ("vgg16", "alexnet"):
        assert f"{model}: cannot be trained here" in out
    assert "retraining" not in out and " trial " not in out
    assert snapshot(folder / "final") | {"trials.json": (folder / "trials.json").read_bytes()} == before


def test_each_search_is_an_optuna_study_with_every_trial_of_trials_json(reference_sweep):
    """tune/sweep/study.py: the grid's trials, and the smoke trials, are in the sweep's journal as they ran: one
    study per architecture, a trial per trials.json entry with its configuration, a value per check, and the
    state trials.json gives it."""
    from optuna.trial import TrialState

    from tune.sweep.folder import STUDIES
    from tune.sweep.study import TUNE_TRIAL_ID, journal, open_study

    states = {"ok": TrialState.COMPLETE, "stopped": TrialState.PRUNED, "failed": TrialState.FAIL}
    storage = journal(reference_sweep.folder / STUDIES)
    for model in TRAINED:
        recorded = {t["trial_id"]: t for t in reference_sweep.trials(model)}
        studied = {t.user_attrs[TUNE_TRIAL_ID]: t for t in open_study(storage, model).trials}
        assert set(studied) == set(recorded), model
        for trial_id, trial in recorded.items():
            frozen = studied[trial_id]
            assert frozen.state == states[trial["status"]] and frozen.params == trial["config"], trial_id
            checks = [h["val_accuracy"] for h in trial["history"] if h.get("val_accuracy") is not None]
            assert list(frozen.intermediate_values.values()) == pytest.approx(checks), trial_id
            if trial["status"] == "ok":
                assert frozen.value == pytest.approx(trial["val_accuracy"])
