"""Other Rays on the machine, a long TMPDIR, CPUs the process may not use, and a GPU that torch cannot use (issue
25, cases 7, 8, 9 and 16), with a real head this test owns: `ray start --head --num-gpus=1` on this machine
without CUDA, its temp dir its own.

One interpreter (tests/embedded_probe.py) runs what a user's runs would: embedded runs, where Ray 2.60's
`ray.init()` joined the cluster recorded by the last `ray start` ($RAY_TMPDIR/ray/ray_current_cluster), alive or
dead (that one hung), where a TMPDIR too long for Ray's socket paths ended in a traceback, and where Ray counted
the host's CPUs under `taskset`; then `jobs.train` and `jobs.sweep --address HEAD`, where Ray Train set up NCCL
on the GPU the head advertises and ended in a ValueError traceback.
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from jobs.engine.train.cpus import usable_cpus
from tests.cli import assert_usage_error
from tests.idx_files import write_mnist
from tests.paths import REPO
from tests.ray_head import free_port, ray_head

LONG_TMPDIR = 54  # characters, as the SLURM node's that broke Ray's socket paths
RECORD = "ray_current_cluster"


def wait_for(condition, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{condition} still false after {timeout_s} s"
        time.sleep(0.2)


def answers_of(proc: subprocess.Popen, steps: list[dict], timeout_s: float = 400) -> list[dict]:
    """tests/embedded_probe.py's answer to each of STEPS."""
    out, err = proc.communicate(timeout=timeout_s)
    answers = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and len(answers) == len(steps), out[-2000:] + err[-3000:]
    return answers


def as_command(answer: dict) -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess([], answer["code"], "", answer["stderr"])


@pytest.mark.process
def test_embedded_runs_start_their_own_ray_and_a_gpu_torch_cannot_use_is_one_line(tmp_path):
    # Ray's default temp dir ($RAY_TMPDIR/ray) with the live head's record, short; and, as on a SLURM node, a
    # TMPDIR too long for Ray's socket paths holding a dead head's record (Ray's temp dir is then $TMPDIR/ray).
    alive = Path(tempfile.mkdtemp(prefix="ta", dir="/tmp"))
    long = tmp_path / ("t" * max(1, LONG_TMPDIR - len(str(tmp_path)) - 1))
    for folder in (alive / "ray", long / "ray"):
        folder.mkdir(parents=True)
    (long / "ray" / RECORD).write_text(f"127.0.0.1:{free_port()}")  # a GCS nobody answers at any more
    head_file = tmp_path / "head.json"
    common = ["--preset", "smoke", "--data-dir", str(write_mnist(tmp_path / "mnist")), "--address", "{address}"]
    steps = [
        # One start for the three: the dead head's record, the long TMPDIR, and one CPU as under `taskset -c 0`.
        {"embedded": {"RAY_TMPDIR": None, "TMPDIR": str(long)}, "affinity": [0]},
        {"wait_for": str(head_file)},  # the embedded runs above overlap the head's start
        {"embedded": {"RAY_TMPDIR": str(alive)}},
        {"command": ["jobs.train", "--model", "cnn", "--output", str(tmp_path / "out"), *common]},
        {"command": ["jobs.sweep", "--models", "cnn", "--output", str(tmp_path / "sweeps"), *common]}]
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen([sys.executable, "-m", "tests.embedded_probe", json.dumps(steps)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with ray_head(num_cpus=1, num_gpus=1) as head:
            record = Path(head.temp_dir) / RECORD
            wait_for(record.is_file)  # written once the head runs, after its dashboard answers
            address = record.read_text().strip()  # the head's GCS: the --address of the commands
            shutil.copy(record, alive / "ray" / RECORD)
            token = {name: head.env[name] for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
            head_file.with_suffix(".part").write_text(json.dumps({"env": token, "address": address}))
            head_file.with_suffix(".part").rename(head_file)
            answers = answers_of(proc, steps)
    finally:
        if proc.poll() is None:
            proc.kill()  # our own child, by its id
            proc.wait()
        shutil.rmtree(alive, ignore_errors=True)
    beside_dead, _, beside_live, train, sweep = answers
    # Each its own Ray: not the recorded head (its GPU), not held up by a dead one; sized by the CPUs it may use.
    for own in (beside_live, beside_dead):
        assert own["embedded"] and own["gcs_address"] != address and own["gpus"] == 0, own
    assert beside_dead["cpus"] == 1 and beside_live["cpus"] == usable_cpus(), answers
    under_long = beside_dead
    # A TMPDIR too long for Ray's socket paths: a short temp dir of its own instead.
    assert not under_long["session_dir"].startswith(str(long)), under_long
    assert len(under_long["session_dir"]) + len("/sockets/dash_TaskEventsHead") <= 107, under_long
    # --address HEAD with its advertised GPU: one line naming the node, before Ray Train starts; the same for a
    # sweep, before its trials and without claiming a sweep folder.
    for command in (train, sweep):
        assert_usage_error(as_command(command), "node ", "Ray offers GPU 0 but torch.cuda.is_available() is False")
    for output in (tmp_path / "out", tmp_path / "sweeps"):
        assert not output.exists() or list(output.iterdir()) == []  # no run folder, no sweep folder, no `latest`
