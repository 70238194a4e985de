"""A preempted worker node: a sweep on a real two-node Ray cluster on 127.0.0.1 (a head that trains nothing and two
worker nodes, each a process group of the test's) loses the node its trial runs on, and the trial continues from
its last checkpoint on the node that remains."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.paths import REPO
from tests.ray_head import ray_head, ray_nodes

# The head notices a node gone after 2 missed health checks half a second apart (Ray's defaults wait ~15 s).
FAST_NODE_DEATH = {"RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "500",
                   "RAY_health_check_failure_threshold": "2", "RAY_health_check_initial_delay_ms": "0"}
EPOCHS = 3
# A small network, so that an epoch takes about a second: the node is lost after the first of three.
SMALL_CNN = {"cnn": {"channels": {"choice": ["8,16"]}, "kernel_size": {"choice": [3]}, "batch_size": {"choice": [128]},
                     "lr": {"choice": [5e-3]}, "dropout": {"choice": [0.1]}}}


def first_report(results: Path, deadline: float) -> dict:
    """The first epoch a trial reported (Tune's result.json under RESULTS), waited for until DEADLINE."""
    while time.monotonic() < deadline:
        for path in results.glob("*/result.json"):
            lines = path.read_text().splitlines()
            if lines and lines[0].endswith("}"):
                return json.loads(lines[0])
        time.sleep(0.2)
    raise TimeoutError(f"no trial reported under {results}")


def parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def ancestry_groups(pid: int) -> set[int]:
    """The process groups of PID and of each of its ancestors."""
    groups = set()
    while pid > 1:
        groups.add(os.getpgid(pid))
        pid = parent(pid)
    return groups


def lose_node(node: subprocess.Popen) -> None:
    """SIGKILL NODE's process group and every process started under it, by their ids."""
    started = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and p.name != str(os.getpid())]
    below = []
    for pid in started:
        try:
            if node.pid in ancestry_groups(pid):
                below.append(pid)
        except (OSError, ValueError, IndexError):
            pass  # a process that ended meanwhile
    os.killpg(node.pid, signal.SIGKILL)
    for pid in below:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    node.wait()


@pytest.mark.process
def test_a_trial_whose_node_is_lost_continues_from_its_last_checkpoint_on_the_node_that_remains(tmp_path, mnist_dir):
    output = tmp_path / "out"
    space = tmp_path / "space.json"
    space.write_text(json.dumps(SMALL_CNN))
    with ray_head(num_cpus=0, settings=FAST_NODE_DEATH) as head, ray_nodes(head, 2) as (one, other):
        log = open(tmp_path / "sweep.log", "w")  # noqa: SIM115 - closed below
        sweep = subprocess.Popen(
            [sys.executable, "-m", "jobs.sweep", "--address", head.address, "--models", "cnn", "--preset", "smoke",
             "--name", "spot", "--output", str(output), "--data-dir", str(mnist_dir), "--set", f"epochs={EPOCHS}",
             "--space", str(space), "--set", "hidden=32", "--set", "train_limit=4096", "--set", "val_limit=256",
             "--set", "test_limit=500",
             "--set", "export_onnx=false", "--set", "robustness_images=0"],
            cwd=REPO, env=head.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            report = first_report(output / "spot" / "tune" / "spot" / "cnn", time.monotonic() + 180)
            # The node the trial runs on goes, all of it at once, as a preempted VM does: its process group, and
            # the worker processes its raylet started (Ray gives each a process group of its own).
            lost = one if one.pid in ancestry_groups(report["pid"]) else other
            assert lost.pid in ancestry_groups(report["pid"]), "the trial runs on neither worker node"
            lose_node(lost)
            code = sweep.wait(timeout=240)
        finally:
            if sweep.poll() is None:
                os.killpg(sweep.pid, signal.SIGKILL)
                sweep.wait()
            log.close()
    out = (tmp_path / "sweep.log").read_text()
    assert code == 0, out[-3000:]
    assert report["epoch"] < EPOCHS  # the node went while the trial still had epochs to train
    assert "lost its worker" in out and "run again from its last checkpoint" in out, out[-3000:]
    (trial,) = json.loads((output / "spot" / "trials.json").read_text())
    assert trial["status"] == "ok" and trial["epochs_run"] == EPOCHS
    # Each epoch reported once: the second run began after the last checkpoint, not at epoch 0.
    epochs = [row["epoch"] for row in trial["history"]]
    assert epochs == sorted(set(epochs)) and epochs[-1] == EPOCHS
    status = json.loads((output / "spot" / "sweep.json").read_text())["status"]["cnn"]
    assert status["status"] == "ok" and status["failed_trials"] == 0
    assert (output / "spot" / "final" / "cnn" / "seed0" / "result.json").is_file()


class TrialKiller:
    """SIGKILLs the process of each run of the trials that match, after its first report, up to `times` runs in
    all: a trial's Ray actor gone, as when its worker process is OOM-killed or its node drops out."""

    def __init__(self, results: Path, match: dict, times: int) -> None:
        self.results, self.match, self.times, self.killed = results, match, times, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)
        self.thread.start()

    def watch(self) -> None:
        while not self.stop.is_set() and len(self.killed) < self.times:
            for path in self.results.glob("*/result.json"):
                for line in path.read_text().splitlines():
                    if not line.endswith("}"):
                        continue  # being written
                    report = json.loads(line)
                    matches = all(report["config"].get(k) == v for k, v in self.match.items())
                    if matches and report["pid"] not in self.killed and len(self.killed) < self.times:
                        self.killed.append(report["pid"])
                        os.kill(report["pid"], signal.SIGKILL)
            time.sleep(0.1)

    def __enter__(self) -> "TrialKiller":
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


@pytest.mark.slow
def test_a_resumed_search_reruns_the_trial_that_lost_its_worker_and_not_the_one_that_failed_for_its_config(
        ray_local, data_ref, tmp_path, monkeypatch, capsys):
    """Two trials at once on the session's Ray, with no retries left (NODE_LOSS_RETRIES 0, as after a sweep's
    retries were used up): one raises at epoch 2 of 3 (fail_at_epoch=1, after a checkpoint, so a rerun from its
    checkpoint would pass it), the other's actor is SIGKILLed after its first epoch. A resumed search reruns the
    lost trial from its checkpoint; the own failure stays failed, never trained again (a Tune retry of it takes the
    same path: the recorded reason, raised at once)."""
    import tune.sweep.tuner
    from jobs.engine.run.cluster import Workers
    from tune.sweep.checks import configs_for
    from tune.sweep.orchestration import search
    from tune.sweep.record import Sweep

    monkeypatch.setattr(tune.sweep.tuner, "NODE_LOSS_RETRIES", 0)
    overrides = ["hidden=32", "train_limit=4096", "val_limit=256", "test_limit=100", f"epochs={EPOCHS}"]
    space = {"cnn": {**SMALL_CNN["cnn"], "fail_at_epoch": {"choice": [-1, 1]}}}
    sweep = Sweep(output=tmp_path / "sweep", models=["cnn"], name="lost", preset="smoke", search="grid",
                  overrides=overrides, spaces=space)
    base = configs_for("cnn", "smoke", overrides)
    results = tmp_path / "sweep" / "tune" / "lost" / "cnn"
    with TrialKiller(results, {"fail_at_epoch": -1}, times=1) as killer:
        first = {t.config["fail_at_epoch"]: t for t in search(sweep, "cnn", base, data_ref, Workers(1, False, 1.0), 2)}
    out = capsys.readouterr().out
    assert len(killer.killed) == 1, out[-3000:]
    lost, own = first[-1], first[1]
    assert lost.status == own.status == "failed"
    assert "injected failure at epoch 1" in own.error and [h["epoch"] for h in own.history] == [1]
    assert "lost its worker" not in out  # no retry left

    again = {t.config["fail_at_epoch"]: t for t in search(sweep, "cnn", base, data_ref, Workers(1, False, 1.0), 2)}
    out = capsys.readouterr().out
    assert "cnn: continuing its search" in out and {t.trial_id for t in again.values()} == {lost.trial_id, own.trial_id}
    assert again[-1].status == "ok", out[-3000:]
    epochs = [h["epoch"] for h in again[-1].history]
    assert epochs == sorted(set(epochs)) and epochs[-1] == EPOCHS  # from its checkpoint: no epoch twice
    assert again[1].status == "failed" and "OwnFailure" in again[1].error
    assert "injected failure at epoch 1" in again[1].error
    assert again[1].history == own.history  # not a step trained again
