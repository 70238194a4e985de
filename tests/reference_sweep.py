"""The session's one real sweep: `python -m jobs.sweep` as a user runs it, behind a dead HTTP proxy, once per test
session; the sweep tests (tests/test_reference_sweep.py) are assertions on the folder it leaves.

What it is made to show, small enough for a 2-core machine:
- cnn searched on a grid of 4 points: lr 3e-3 (learns) or 1e-5 (stays near chance), each with fail_at_epoch -1 or 0
  (0 raises in the trial's worker: two failing trials, recorded, and the sweep goes on); 4 validation checks in
  its one epoch give ASHA rungs, and Tune's grid order (the last key varies fastest) starts the learning trial
  first, so ASHA has its checks in hand when the weak one arrives and stops it part-way.
- vit and faster_rcnn at the smoke preset, one trial each, searched at the same time as cnn on the same Ray.
- vgg16 and alexnet without ImageNet weights (an empty TORCH_HOME; the dead proxy fails the download at once,
  with no traffic leaving the machine): rows that say why, never a crash.
- the final retrains with every final check (serving, compute, ONNX, calibration, robustness) and the report.
- logged live to the session's MLflow server (`--mlflow`, experiment `live`, `--register archsweep-live`) where
  .venv-mlflow is there (tests/mlflow_server.py): tests/test_mlflow_sweep.py reads it back.

Tests that change the folder work on a copy (`copy_of`). `seconds` is the sweep's wall time as the test session saw
it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.paths import REPO
from tests.ray_head import stop_group

DEAD_PROXY = "http://127.0.0.1:9"  # nothing listens there: a request through it is refused at once
# The detector first: its trial is the longest and asks for a CPU first, so the others' trials run beside it (the
# sweep searches every architecture at once) and cnn's grid gets one CPU at a time, in the grid's order.
MODELS = ("faster_rcnn", "vit", "cnn", "vgg16", "alexnet")
TRAINED = ("cnn", "vit", "faster_rcnn")
SPACE = {
    "cnn": {"lr": {"choice": [3e-3, 1e-5]}, "fail_at_epoch": {"choice": [-1, 0]}},
    "vit": {"lr": {"choice": [2e-3]}},
    # The detector is the sweep's long pole on 2 cores (a mAP check over canvases costs seconds): fewer canvases and
    # one check. Its learning is tests/test_faster_rcnn.py's; here it proves the plumbing of a detection sweep.
    "faster_rcnn": {"lr": {"choice": [1e-3]}, "train_limit": {"choice": [128]}, "val_limit": {"choice": [64]},
                    "test_limit": {"choice": [100]}, "val_checks_per_epoch": {"choice": [1]}},
}
# The smoke preset, smaller still where the models allow: what these tests check is the sweep, not the numbers.
SETTINGS = ["--set", "train_limit=512", "--set", "val_limit=256", "--set", "test_limit=1000",
            "--set", "val_checks_per_epoch=4"]


LIVE_EXPERIMENT, LIVE_MODEL = "live", "archsweep-live"  # where the reference sweep logs, and what it registers


def behind_a_dead_proxy() -> dict[str, str]:
    """The environment of a user behind an HTTP proxy who never set NO_PROXY."""
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    return {**env, "HTTP_PROXY": DEAD_PROXY, "http_proxy": DEAD_PROXY, "HTTPS_PROXY": DEAD_PROXY,
            "https_proxy": DEAD_PROXY}


@dataclass(frozen=True)
class ReferenceSweep:
    output: Path  # the OUTPUT the sweep was given
    folder: Path  # its own folder in OUTPUT
    stdout: str
    seconds: float
    mlflow: str | None = None  # the tracking server it logged to, live (experiment LIVE_EXPERIMENT)

    def load(self, name: str):
        return json.loads((self.folder / name).read_text())

    def trials(self, model: str) -> list[dict]:
        return [t for t in self.load("trials.json") if t["model"] == model]


@contextmanager
def run_reference_sweep(root: Path, mnist_dir: Path, mlflow: str | None = None) -> Iterator[ReferenceSweep]:
    """Run the sweep into ROOT/out as a process group of its own and yield it finished, logged to the MLflow
    server at MLFLOW when given; raises AssertionError with its output when it does not exit 0. A session that ends
    while it runs (a timeout, ^C) ends it and the Ray it started, by id (tests/ray_head.py `stop_group`)."""
    space = root / "space.json"
    space.write_text(json.dumps(SPACE))
    output, log, err = root / "out", root / "sweep.log", root / "sweep.err"
    env = {**behind_a_dead_proxy(), "MNIST_DATA_DIR": str(mnist_dir), "TORCH_HOME": str(root / "empty-torch-home"),
           "MLFLOW_EXPERIMENT_NAME": LIVE_EXPERIMENT}
    command = [sys.executable, "-m", "jobs.sweep", "--models", ",".join(MODELS), "--preset", "smoke",
               "--search", "grid", "--space", str(space), *SETTINGS, "--output", str(output),
               *(["--mlflow", mlflow, "--register", LIVE_MODEL] if mlflow else [])]
    started = time.perf_counter()
    with open(log, "w") as out, open(err, "w") as errors:
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=errors, env=env, start_new_session=True)
    try:
        code = process.wait(900)
        stdout = log.read_text()
        assert code == 0, stdout[-4000:] + err.read_text()[-4000:]
        (folder,) = sweep_folders(output)
        yield ReferenceSweep(output, folder, stdout, time.perf_counter() - started, mlflow)
    finally:
        stop_group(process)


def sweep_folders(output: Path) -> list[Path]:
    return sorted(p for p in output.iterdir() if p.is_dir() and not p.is_symlink())


def copy_of(reference: ReferenceSweep, where: Path) -> Path:
    """A copy of the reference sweep's OUTPUT (its folder and `latest`) at WHERE/out, for a test that changes it."""
    shutil.copytree(reference.output, where / "out", symlinks=True)
    return where / "out"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
