"""Faults in a real sweep: a failing trial is recorded and the sweep completes; a killed sweep resumes."""

import json
import os
import signal
import subprocess
import sys
import time

from tests.conftest import REPO

SMALL = ["--preset", "smoke", "--set", "train_limit=512", "--set", "val_limit=256", "--set", "test_limit=500"]


def sweep_command(output, *args):
    return [sys.executable, "-m", "jobs.sweep", "--models", "cnn", "--output", str(output), *SMALL, *args]


def test_failing_trial_is_recorded_and_the_sweep_completes(tmp_path, mnist_dir):
    space = tmp_path / "space.json"
    # kernel 29 without padding shrinks 28x28 to nothing: a bad sampled config, rejected inside its trial.
    space.write_text(json.dumps({"cnn": {"kernel_size": {"choice": [3, 29]}}}))
    proc = subprocess.run(sweep_command(tmp_path / "out", "--search", "grid", "--space", str(space),
                                        "--set", "padding=valid", "--data-dir", str(mnist_dir)),
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    trials = json.loads((tmp_path / "out" / "trials.json").read_text())
    by_kernel = {t["config"]["kernel_size"]: t for t in trials}
    assert by_kernel[29]["status"] == "failed" and "shrink 28x28 to nothing" in by_kernel[29]["error"]
    assert by_kernel[3]["status"] == "ok" and by_kernel[3]["val_accuracy"] > 0.1
    status = json.loads((tmp_path / "out" / "sweep.json").read_text())["status"]["cnn"]
    assert status["status"] == "ok" and status["failed_trials"] == 1 and status["best_config"] == {"kernel_size": 3}
    row = json.loads((tmp_path / "out" / "comparison.json").read_text())[0]
    assert row["model"] == "cnn" and row["failed_trials"] == 1 and row["test_accuracy"] > 0.1
    assert (tmp_path / "out" / "report.html").is_file()


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


def test_killed_sweep_resumes_without_rerunning_finished_trials(tmp_path, mnist_dir):
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "1"}
    output = tmp_path / "out"
    first = sweep_command(output, "--samples", "3", "--data-dir", str(mnist_dir))
    finished, log = run_until_trials_finish(first, 2, env)
    assert len(finished) >= 2, log[-3000:]

    resumed = subprocess.run(sweep_command(output, "--resume", "--data-dir", str(mnist_dir)), cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "continuing its search" in resumed.stdout
    for trial in finished:  # no finished trial runs again
        assert f"trial {trial}:" not in resumed.stdout
    trials = json.loads((output / "trials.json").read_text())
    assert len(trials) == 3 and set(finished) <= {t["trial_id"] for t in trials}
    assert all(t["status"] in ("ok", "stopped") for t in trials)
    assert (output / "final" / "cnn" / "seed0" / "result.json").is_file()
