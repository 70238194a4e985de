"""Sweeps and what goes wrong around them: a second sweep into the reference sweep's OUTPUT, a sweep where no model
trains, and a sweep killed mid-search then resumed. The one real kill is a process group's SIGKILL; the sweeps and
resumes after it call the command's main() in this process, on the session's Ray."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs.sweep import main as sweep_main
from tests.live_dashboard import check_live_dashboard
from tests.paths import REPO
from tests.reference_sweep import behind_a_dead_proxy, copy_of, snapshot, sweep_folders
from tune.analysis.comparison import fmt_accuracy
from tune.sweep.folder import STUDIES
from tune.sweep.study import TUNE_TRIAL_ID, journal, open_study

# What these tests check is the sweep around the runs (resume, shared output, failures), not the final checks,
# which the every-architecture sweep (test_sweep_submit.py) and their own tests cover: skipping the ONNX export
# and the robustness scoring saves ~10 s a retrain, and these tests run six.
SMALL = ["--preset", "smoke", "--set", "train_limit=512", "--set", "val_limit=256", "--set", "test_limit=500",
         "--set", "export_onnx=false", "--set", "robustness_images=0"]


def sweep_command(output, *args):
    return [sys.executable, "-m", "jobs.sweep", "--models", "cnn", "--output", str(output), *SMALL, *args]


def in_process(capsys, *args) -> str:
    """The sweep command's main() in this process, on the session's Ray; its exit code must be 0; returns stdout."""
    code = sweep_main([*args])
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    return out


def load(path: Path):
    return json.loads(path.read_text())


@pytest.mark.slow
def test_a_second_sweep_into_the_same_output_keeps_each_sweeps_results_apart_behind_a_dead_proxy(
        reference_sweep, ray_local, mnist_dir, tmp_path, monkeypatch, capsys):
    """Sweep B (another hidden width, Optuna, 2 seeds, 2 workers per trial) into the OUTPUT of the reference sweep
    (a grid with failing trials), with HTTP_PROXY set and no NO_PROXY: before, B reused A's retrain and the proxy
    hung the retrain for good."""
    output = copy_of(reference_sweep, tmp_path)
    first = output / reference_sweep.folder.name
    first_files = snapshot(first)
    for key, value in behind_a_dead_proxy().items():
        monkeypatch.setenv(key, value)
    for var in ("NO_PROXY", "no_proxy"):  # restored after the test: the sweep adds Ray's own hosts to them
        monkeypatch.delenv(var, raising=False)
    # Two objectives too (tune/sweep/objectives.py): Optuna's multi-objective sampling on accuracy and parameters.
    second_run = in_process(capsys, *sweep_command(output, "--set", "hidden=32", "--search", "optuna", "--seeds", "2",
                                                   "--workers", "2", "--objective", "accuracy,params",
                                                   "--budget", "params=1e9", "--data-dir", str(mnist_dir))[3:])
    assert "already retrained" not in second_run
    second = next(f for f in sweep_folders(output) if f != first)
    assert (output / "latest").resolve() == second
    assert snapshot(first) == first_files  # the first sweep is untouched, byte for byte
    record = load(second / "sweep.json")
    assert record["search"] == "optuna" and record["overrides"] == [*SMALL[3::2], "hidden=32"]
    assert record["name"] == second.name
    (trial,) = load(second / "trials.json")
    assert trial["status"] == "ok" and trial["trial_id"] not in {t["trial_id"] for t in reference_sweep.trials("cnn")}
    assert trial["resources"] == {"CPU": 2.0}  # two Ray Train workers of one CPU each
    assert record["objective"] == "accuracy,params" and record["budget"] == 1e9
    assert record["status"]["cnn"]["why_chosen"] == "the most accurate within params <= 1e+09"
    (studied,) = open_study_of(second, "cnn").trials  # Optuna's own study, in the sweep's journal, on both
    assert studied.values == [pytest.approx(trial["history"][-1]["val_accuracy"]), trial["cost"]]
    assert trial["cost"] == load(second / "final" / "cnn" / "seed0" / "result.json")["params"]
    for seed in (0, 1):  # the retrain: train+validation, evaluated on the test set, one run per seed
        result = load(second / "final" / "cnn" / f"seed{seed}" / "result.json")
        assert result["config"]["hidden"] == 32 and result["config"]["seed"] == seed
        assert result["config"]["train_on_val"] and result["config"]["evaluate_test"]
        assert len(result["test_labels"]) == 500 and result["test_accuracy"] is not None
    (row,) = load(second / "comparison.json")
    assert row["seeds"] == 2 and row["test_accuracy_std"] is not None
    # Each report shows its own sweep only: A searched fail_at_epoch, B did not; each shows its own accuracy.
    html, first_html = (second / "report.html").read_text(), first_files["report.html"].decode()
    assert "fail_at_epoch" in first_html and "fail_at_epoch" not in html
    assert fmt_accuracy(row["test_accuracy"], row["test_accuracy_std"]) in html
    assert 'id="pareto-sets"' in html and "Accuracy against cost" not in first_html  # the one two-objective sweep
    assert f"{trial['trial_id']}</td>" in html and "retrained the most accurate within params" in html

    from jobs.report import main as report_main  # OUTPUT means its latest sweep; the first stays as it was

    assert report_main([str(output)]) == 0
    assert f"wrote {second / 'report.html'}" in capsys.readouterr().out
    assert snapshot(first) == first_files


@pytest.mark.slow
def test_a_sweep_where_no_model_trains_exits_1_and_says_why(ray_local, mnist_dir, tmp_path, monkeypatch, capsys):
    """cnn: every trial fails; vit: its search works but the final retrain fails. Both rows say why; exit 1."""
    import ray

    import tune.sweep.orchestration
    from jobs.sweep import main

    seen_by_trials = []
    real_setup = tune.sweep.orchestration.TrialSetup

    def spy(model, base, data_ref, *args, **kwargs):
        seen_by_trials.append(ray.get(data_ref).sizes())
        return real_setup(model, base, data_ref, *args, **kwargs)

    def retrain_fails(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (injected)")

    monkeypatch.setattr(tune.sweep.orchestration, "TrialSetup", spy)
    monkeypatch.setattr(tune.sweep.orchestration, "train_in_task", retrain_fails)
    for var in ("NO_PROXY", "no_proxy"):  # restored after the test: the sweep adds Ray's own hosts to them
        monkeypatch.setenv(var, "")
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"cnn": {"fail_at_epoch": {"choice": [0]}}}))
    code = main(["--models", "cnn,vit", *SMALL, "--space", str(space), "--output", str(tmp_path),
                 "--data-dir", str(mnist_dir)])
    assert code == 1
    sweep = next(f for f in sweep_folders(tmp_path))
    status = load(sweep / "sweep.json")["status"]
    assert status["cnn"]["status"] == "failed" and status["cnn"]["reason"].startswith("every trial failed")
    assert "injected failure at epoch 0" in status["cnn"]["reason"]
    assert status["vit"]["status"] == "failed"
    assert status["vit"]["reason"] == "final retrain failed: CUDA out of memory (injected)"
    rows = {row["model"]: row for row in load(sweep / "comparison.json")}
    assert rows["cnn"]["reason"] == status["cnn"]["reason"] and rows["vit"]["reason"] == status["vit"]["reason"]
    assert (sweep / "report.html").is_file()
    # Search trials never see the test set: the data they get has no test images at all.
    assert seen_by_trials and all(sizes["test"] == 0 and sizes["train"] > 0 for sizes in seen_by_trials)


def run_until_trials_finish(command, count, env, timeout_s=400, while_running=None):
    """Start a sweep in its own process group; SIGKILL the whole group once `count` trials have finished, after
    WHILE_RUNNING (a function of no arguments) has looked at the sweep still running."""
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env, start_new_session=True)
    finished, lines, deadline = [], [], time.monotonic() + timeout_s
    try:
        for line in process.stdout:
            lines.append(line)
            if " trial " in line and ": finished" in line:
                finished.append(line.split(" trial ")[1].split(":")[0])
            if len(finished) >= count or time.monotonic() > deadline:
                time.sleep(3)  # let Tune write its experiment state once more
                if while_running is not None and process.poll() is None:
                    # Frozen, not ended, while it is looked at: left running, a fast machine finished the whole
                    # sweep during the look (seen once), and there was nothing left to resume.
                    os.killpg(process.pid, signal.SIGSTOP)
                    while_running()
                break
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return finished, "".join(lines)


@pytest.mark.slow
def test_killed_sweep_resumes_without_rerunning_finished_work(tmp_path, mnist_dir, ray_local, monkeypatch, capsys,
                                                              chromium):
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "1")
    for var in ("NO_PROXY", "no_proxy"):  # restored after the test: the sweep adds Ray's own hosts to them
        if var in os.environ:
            monkeypatch.setenv(var, os.environ[var])
        else:
            monkeypatch.delenv(var, raising=False)
    output = tmp_path / "out"
    first = sweep_command(output, "--samples", "3", "--data-dir", str(mnist_dir))
    # While it runs, `make dashboard` shows its search live (tests/live_dashboard.py).
    finished, log = run_until_trials_finish(first, 2, {**os.environ}, while_running=lambda: check_live_dashboard(
        output, chromium, "cnn", 2, tmp_path / "profile"))
    assert len(finished) >= 2, log[-3000:]
    # The driver's start and end of each trial, stamped as it started and ended, in the trial's own folder.
    stamped = driver_stamps(output)
    assert set(finished) <= set(stamped), (finished, stamped)

    # --resume alone continues OUTPUT/latest.
    resumed = in_process(capsys, *sweep_command(output, "--resume", "--data-dir", str(mnist_dir))[3:])
    # Killed mid-search it continues the search; on a fast machine the search may have ended (its best chosen)
    # before the kill, and then the resume goes straight to the retrain: either way no finished trial reruns.
    assert "continuing its search" in resumed or "its search ended in an earlier run" in resumed, resumed[:3000]
    for trial in finished:  # no finished trial runs again
        assert f"trial {trial}:" not in resumed
    (sweep,) = sweep_folders(output)
    trials = load(sweep / "trials.json")
    assert len(trials) == 3 and set(finished) <= {t["trial_id"] for t in trials}
    assert all(t["status"] in ("ok", "stopped") for t in trials)
    for trial in trials:  # a finished trial's record keeps the stamps of the run that ran it (before: new ones)
        if trial["trial_id"] in finished:
            assert (trial["started_at"], trial["finished_at"]) == stamped[trial["trial_id"]], trial
    # Its search ended and its best trial chosen, no trial checkpoint is kept; the trials' results are.
    assert not list((sweep / "tune").rglob("checkpoint_0*")) and len(list((sweep / "tune").rglob("progress.csv"))) == 3
    retrained = sweep / "final" / "cnn" / "seed0" / "result.json"
    before = retrained.read_bytes()

    # Killed again during the retrain, after seed 0 was written: a resume keeps that seed and trains no trial.
    record = load(sweep / "sweep.json")
    record["status"]["cnn"]["status"] = "running"
    (sweep / "sweep.json").write_text(json.dumps(record))
    again = in_process(capsys, "--resume", str(sweep), "--data-dir", str(mnist_dir))
    assert "cnn: seed 0 already retrained, kept" in again and "  cnn trial " not in again
    assert retrained.read_bytes() == before and load(sweep / "sweep.json")["status"]["cnn"]["status"] == "ok"

    # Copied elsewhere (kubectl cp of the results volume to a laptop) and the original gone: a resume continues
    # the copy, its search restored from the copy's own tune/, and nothing is written at the old path.
    # (A finished sweep resumed has nothing left to do: tests/test_reference_sweep.py.)
    copy = tmp_path / "laptop" / sweep.name
    copy.parent.mkdir()
    sweep.rename(copy)
    output.rename(tmp_path / "gone")
    record = load(copy / "sweep.json")
    assert record["storage"] == ""  # the default storage is the sweep folder's own, wherever it is
    recorded = {t["trial_id"]: t for t in load(copy / "trials.json")}
    record["status"]["cnn"] = {"status": "running"}  # killed before its search ended
    (copy / "sweep.json").write_text(json.dumps(record))
    (copy / "final" / "cnn" / "seed0" / "result.json").unlink()
    moved = in_process(capsys, "--resume", str(copy), "--data-dir", str(mnist_dir))
    assert f"continuing its search from {copy / 'tune'}" in moved, moved[-2000:]
    assert "  cnn trial " not in moved  # every trial was restored, none run again
    # Rebuilt from the copy's own Tune storage (its checkpoints gone), the records are the ones recorded.
    assert {t["trial_id"]: t for t in load(copy / "trials.json")} == recorded
    # The resumed search continued the study: the journal holds each trial of trials.json once.
    studied = open_study(journal(copy / STUDIES), "cnn").trials
    assert sorted(t.user_attrs[TUNE_TRIAL_ID] for t in studied) == sorted(recorded)
    assert (copy / "final" / "cnn" / "seed0" / "result.json").is_file() and not output.exists()


def open_study_of(sweep: Path, model: str):
    """MODEL's Optuna study as the sweep wrote it, directions as recorded (one or two objectives)."""
    import optuna

    return optuna.load_study(study_name=model, storage=journal(sweep / STUDIES))


def driver_stamps(output: Path) -> dict[str, tuple[str, str]]:
    """Each ended trial's (started_at, finished_at) as the driver stamped them under OUTPUT's Tune storage."""
    stamps = [json.loads(path.read_text()) for path in output.rglob("driver_times.json")]
    return {t["trial_id"]: (t["started_at"], t["finished_at"]) for t in stamps if "finished_at" in t}
