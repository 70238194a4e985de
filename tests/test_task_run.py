"""A sweep's single-worker retrain as one Ray task (jobs/engine/run/launch.py): result.json, its checkpoint, and a rerun
that continues from the last epoch instead of starting over."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from jobs.engine import config as run_config
from jobs.engine.run.cluster import Workers
from jobs.engine.run.launch import train_in_task

ONE_CPU = Workers(1, False, 1.0)


def smoke(*overrides: str) -> dict:
    return run_config.resolve("cnn", "smoke", ["epochs=2", "train_limit=256", "val_limit=128", "test_limit=1000",
                                               *overrides])


@pytest.mark.slow
def test_a_retrain_task_continues_from_its_last_epoch_writes_its_result_and_is_not_trained_again(
        ray_local, data_ref, tmp_path, capsys):
    """The suite's one retrain task, through its whole protocol in one warm Ray worker."""
    # A task that fails at the start of epoch 2 raises, after epoch 1 was printed and checkpointed; no result.json.
    with pytest.raises(Exception, match="injected failure at epoch 1"):
        train_in_task("cnn", smoke("fail_at_epoch=1"), data_ref, ONE_CPU, tmp_path, "seed0", label="first: ")
    assert "first: epoch   1/2" in capsys.readouterr().out
    assert not (tmp_path / "seed0" / "result.json").exists()

    # Same folder again, as `--resume` would: epoch 1 comes from the checkpoint, only epoch 2 trains.
    result = train_in_task("cnn", smoke("fail_at_epoch=1"), data_ref, ONE_CPU, tmp_path, "seed0", label="again: ")
    out = capsys.readouterr().out
    assert "again: epoch   1/2" not in out and "again: epoch   2/2" in out
    assert [h["epoch"] for h in result.history] == [1, 2]
    saved = json.loads((tmp_path / "seed0" / "result.json").read_text())
    assert saved["test_accuracy"] == result.test_accuracy > 0.2  # 10 classes: chance is 0.1
    assert saved["epochs"] == 2 and saved["resources"] == {"CPU": 1.0}
    assert saved["started_at"] < saved["finished_at"]
    assert (tmp_path / "seed0" / "checkpoint" / "checkpoint.pt").is_file()  # the retrained weights stay
    # The test predictions and the ONNX model moved beside result.json.
    assert (tmp_path / "seed0" / "predictions.npz").is_file() and (tmp_path / "seed0" / "model.onnx").is_file()

    # Killed after its last epoch, before result.json: a rerun finds the finished checkpoint and trains nothing.
    (tmp_path / "seed0" / "result.json").unlink()
    again = train_in_task("cnn", smoke("fail_at_epoch=1"), data_ref, ONE_CPU, tmp_path, "seed0", label="third: ")
    assert "third: epoch" not in capsys.readouterr().out
    assert again.test_accuracy == result.test_accuracy and again.history == result.history
    assert (tmp_path / "seed0" / "predictions.npz").is_file() and (tmp_path / "seed0" / "model.onnx").is_file()


def test_more_than_one_worker_is_refused(tmp_path):
    with pytest.raises(ValueError, match="use train_with_ray_train for DDP"):
        train_in_task("cnn", smoke(), None, Workers(2, False, 1.0), tmp_path, "seed0")


def test_a_task_holds_its_resources_from_its_process_start_when_ray_started_the_process_for_it():
    from datetime import datetime

    from jobs.engine.run.launch import held_since, process_started

    started = process_started()
    assert started is not None and started < time.time()
    # Submitted before this process existed: Ray started the process for the task, which held its CPU meanwhile.
    assert datetime.fromisoformat(held_since(started - 5)).timestamp() == pytest.approx(started, abs=0.05)
    # Submitted after: a process that already ran something else holds the CPU for this task from now on.
    now = time.time()
    assert datetime.fromisoformat(held_since(started + 1)).timestamp() >= now


def test_a_gpu_that_torch_cannot_use_fails_the_run_in_one_line(monkeypatch):
    # A node whose driver is too old for the CUDA torch was built for: Ray still counts and assigns its GPU.
    import ray
    import torch

    from jobs.engine.train import sessions

    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [0])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(sessions.GpuUnusable, match=r"Ray gave this run GPU 0 but torch.cuda.is_available\(\) is False"
                       r".*R580 or newer.*--gpu off"):
        sessions.OneProcessSession()
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [])
    assert sessions.OneProcessSession().device.type == "cpu"  # no GPU asked for: the CPU, no error


def kill_running_task(address: str, name: str, after: Path, killed: list[int], stop: threading.Event) -> None:
    """Once AFTER exists, SIGKILL the worker process of the running Ray task NAME on the Ray at ADDRESS (found by the
    state API, ended by its id), as when its node is preempted or the kernel's OOM killer takes it.

    The pid is looked up from the start, not once AFTER exists: Ray's task events reach the state API about a second
    late, and by then a short run may have finished."""
    from ray.util.state import list_tasks

    pid = None
    running = [("name", "=", name), ("state", "=", "RUNNING")]
    while not stop.is_set() and not killed:
        if pid is None:
            pids = [t.worker_pid for t in list_tasks(address, filters=running, raise_on_missing_output=False)
                    if t.worker_pid]
            pid = pids[0] if pids else None
        if pid is not None and after.exists():
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.05)


@pytest.mark.slow
def test_a_retrain_whose_worker_is_lost_runs_again_from_its_last_checkpoint(ray_local, data_ref, tmp_path, capsys):
    """Issue 25, item 4 for the retrains: the task's worker process SIGKILLed after its first checkpoint; the driver
    runs it again (jobs/engine/run/launch.py ATTEMPTS) and the run continues from that epoch, each epoch once."""
    killed: list[int] = []
    stop = threading.Event()
    watcher = threading.Thread(target=kill_running_task, daemon=True,
                               args=(ray_local.get_runtime_context().gcs_address, "loop_task",
                                     tmp_path / "seed0" / "checkpoint", killed, stop))
    watcher.start()
    try:
        # Epochs of ~1.5 s each: the run is still going when the watcher sees the first checkpoint.
        config = smoke("epochs=3", "train_limit=4096", "export_onnx=false", "robustness_images=0")
        result = train_in_task("cnn", config, data_ref, ONE_CPU, tmp_path, "seed0", label="lost: ")
    finally:
        stop.set()
        watcher.join()
    out = capsys.readouterr().out
    assert len(killed) == 1, out[-2000:]
    assert "lost: lost its worker (" in out and "run again from its last checkpoint" in out, out[-2000:]
    assert [h["epoch"] for h in result.history] == [1, 2, 3]  # from the checkpoint: no epoch trained twice
    after_loss = out.split("lost its worker", 1)[1]
    assert "lost: epoch   1/3" not in after_loss and "lost: epoch   3/3" in after_loss
    assert json.loads((tmp_path / "seed0" / "result.json").read_text())["test_accuracy"] == result.test_accuracy
