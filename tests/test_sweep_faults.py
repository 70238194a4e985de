"""Real sweeps and what goes wrong around them: sweeps sharing one OUTPUT, failing trials and models, resumes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.paths import REPO
from tune.comparison import fmt_accuracy

# What these tests check is the sweep around the runs (resume, shared output, failures), not the final checks,
# which the every-architecture sweep (test_sweep_submit.py) and their own tests cover: skipping the ONNX export
# and the robustness scoring saves ~10 s a retrain, and these tests run six.
SMALL = ["--preset", "smoke", "--set", "train_limit=512", "--set", "val_limit=256", "--set", "test_limit=500",
         "--set", "export_onnx=false", "--set", "robustness_images=0"]
DEAD_PROXY = "http://127.0.0.1:9"  # nothing listens there: a request through it fails, or waits, forever


def sweep_command(output, *args):
    return [sys.executable, "-m", "jobs.sweep", "--models", "cnn", "--output", str(output), *SMALL, *args]


def behind_a_dead_proxy() -> dict[str, str]:
    """The environment of a user behind an HTTP proxy who never set NO_PROXY."""
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    return {**env, "HTTP_PROXY": DEAD_PROXY, "http_proxy": DEAD_PROXY, "HTTPS_PROXY": DEAD_PROXY,
            "https_proxy": DEAD_PROXY}


def run_sweep(*args, env=None, timeout=420) -> subprocess.CompletedProcess:
    proc = subprocess.run([*args], cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def sweep_folders(output: Path) -> list[Path]:
    return sorted(p for p in output.iterdir() if p.is_dir() and not p.is_symlink())


def load(path: Path):
    return json.loads(path.read_text())


@pytest.mark.slow
def test_two_sweeps_into_one_output_keep_their_own_results_behind_a_dead_proxy(tmp_path, mnist_dir, capsys):
    """Sweep A (a grid with one failing trial), then sweep B (another hidden width, Optuna, 2 seeds, 2 workers
    per trial) into the same OUTPUT, both with HTTP_PROXY set and no NO_PROXY: before, B reused A's retrain and
    the proxy hung the retrain for good."""
    output, env = tmp_path / "out", {**behind_a_dead_proxy(), "MNIST_DATA_DIR": str(mnist_dir)}
    space = tmp_path / "space.json"
    # fail_at_epoch=0 makes one trial raise inside its worker: a failing trial, recorded, and the sweep goes on.
    space.write_text(json.dumps({"cnn": {"fail_at_epoch": {"choice": [-1, 0]}}}))
    run_sweep(*sweep_command(output, "--search", "grid", "--space", str(space)), env=env)
    (first,) = sweep_folders(output)
    assert (output / "latest").resolve() == first
    trials = load(first / "trials.json")
    by_fail = {t["config"]["fail_at_epoch"]: t for t in trials}
    assert by_fail[0]["status"] == "failed" and "injected failure at epoch 0" in by_fail[0]["error"]
    assert by_fail[-1]["status"] == "ok" and by_fail[-1]["val_accuracy"] > 0.3
    status = load(first / "sweep.json")["status"]["cnn"]
    assert status["status"] == "ok" and status["failed_trials"] == 1 and status["best_config"] == {"fail_at_epoch": -1}
    row = load(first / "comparison.json")[0]
    assert row["model"] == "cnn" and row["failed_trials"] == 1 and row["test_accuracy"] > 0.3
    first_files = snapshot(first)
    assert {"sweep.json", "trials.json", "comparison.json", "report.html", "final/cnn/seed0/result.json"} <= set(
        first_files) and any(name.startswith("tune/") for name in first_files)

    second_run = run_sweep(*sweep_command(output, "--set", "hidden=32", "--search", "optuna", "--seeds", "2",
                                          "--workers", "2"), env=env)
    assert "already retrained" not in second_run.stdout
    second = next(f for f in sweep_folders(output) if f != first)
    assert (output / "latest").resolve() == second
    assert snapshot(first) == first_files  # the first sweep is untouched, byte for byte
    record = load(second / "sweep.json")
    assert record["search"] == "optuna" and record["overrides"] == [*SMALL[3::2], "hidden=32"]
    assert record["name"] == second.name
    (trial,) = load(second / "trials.json")
    assert trial["status"] == "ok" and trial["trial_id"] not in {t["trial_id"] for t in trials}
    assert trial["resources"] == {"CPU": 2.0}  # two Ray Train workers of one CPU each
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

    from jobs.report import main as report_main  # OUTPUT means its latest sweep; the first stays as it was

    assert report_main([str(output)]) == 0
    assert f"wrote {second / 'report.html'}" in capsys.readouterr().out
    assert snapshot(first) == first_files


@pytest.mark.slow
def test_a_sweep_where_no_model_trains_exits_1_and_says_why(ray_local, mnist_dir, tmp_path, monkeypatch, capsys):
    """cnn: every trial fails; vit: its search works but the final retrain fails. Both rows say why; exit 1."""
    import ray

    import tune.orchestration
    from jobs.sweep import main

    seen_by_trials = []
    real_setup = tune.orchestration.TrialSetup

    def spy(model, base, data_ref, *args, **kwargs):
        seen_by_trials.append(ray.get(data_ref).sizes())
        return real_setup(model, base, data_ref, *args, **kwargs)

    def retrain_fails(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (injected)")

    monkeypatch.setattr(tune.orchestration, "TrialSetup", spy)
    monkeypatch.setattr(tune.orchestration, "train_in_task", retrain_fails)
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


def run_until_trials_finish(command, count, env, timeout_s=400):
    """Start a sweep in its own process group; SIGKILL the whole group once `count` trials have finished."""
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
                break
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return finished, "".join(lines)


@pytest.mark.slow
def test_killed_sweep_resumes_without_rerunning_finished_work(tmp_path, mnist_dir):
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "1"}
    output = tmp_path / "out"
    first = sweep_command(output, "--samples", "3", "--data-dir", str(mnist_dir))
    finished, log = run_until_trials_finish(first, 2, env)
    assert len(finished) >= 2, log[-3000:]

    # --resume alone continues OUTPUT/latest.
    resumed = run_sweep(*sweep_command(output, "--resume", "--data-dir", str(mnist_dir)), env=env)
    assert "continuing its search" in resumed.stdout
    for trial in finished:  # no finished trial runs again
        assert f"trial {trial}:" not in resumed.stdout
    (sweep,) = sweep_folders(output)
    trials = load(sweep / "trials.json")
    assert len(trials) == 3 and set(finished) <= {t["trial_id"] for t in trials}
    assert all(t["status"] in ("ok", "stopped") for t in trials)
    retrained = sweep / "final" / "cnn" / "seed0" / "result.json"
    before = retrained.read_bytes()

    # Killed again during the retrain, after seed 0 was written: a resume keeps that seed and trains no trial.
    record = load(sweep / "sweep.json")
    record["status"]["cnn"]["status"] = "running"
    (sweep / "sweep.json").write_text(json.dumps(record))
    again = run_sweep(sys.executable, "-m", "jobs.sweep", "--resume", str(sweep), "--data-dir", str(mnist_dir),
                      env=env)
    assert "cnn: seed 0 already retrained, kept" in again.stdout and "  cnn trial " not in again.stdout
    assert retrained.read_bytes() == before and load(sweep / "sweep.json")["status"]["cnn"]["status"] == "ok"

    # And a finished sweep resumed once more has nothing left to do.
    done = run_sweep(sys.executable, "-m", "jobs.sweep", "--resume", str(sweep), "--data-dir", str(mnist_dir),
                     env=env)
    assert "cnn: already done in this sweep, kept" in done.stdout and "retraining" not in done.stdout

    # Copied elsewhere (kubectl cp of the results volume to a laptop) and the original gone: a resume continues
    # the copy, its search restored from the copy's own tune/, and nothing is written at the old path.
    copy = tmp_path / "laptop" / sweep.name
    copy.parent.mkdir()
    sweep.rename(copy)
    output.rename(tmp_path / "gone")
    record = load(copy / "sweep.json")
    assert record["storage"] == ""  # the default storage is the sweep folder's own, wherever it is
    record["status"]["cnn"]["status"] = "running"
    (copy / "sweep.json").write_text(json.dumps(record))
    (copy / "final" / "cnn" / "seed0" / "result.json").unlink()
    moved = run_sweep(sys.executable, "-m", "jobs.sweep", "--resume", str(copy), "--data-dir", str(mnist_dir), env=env)
    assert f"continuing its search from {copy / 'tune'}" in moved.stdout, moved.stdout[-2000:]
    assert "  cnn trial " not in moved.stdout  # every trial was restored, none run again
    assert (copy / "final" / "cnn" / "seed0" / "result.json").is_file() and not output.exists()
