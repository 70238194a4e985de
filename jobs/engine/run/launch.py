"""Launching a run of the one loop on Ray, in each of its three ways, and writing its result.json.

- `train_with_ray_train`: a `TorchTrainer` of N workers (DDP; gloo on CPU, nccl on GPU) with FailureConfig
  restarts from the last checkpoint. `python -m jobs.train`, and sweep trials of `--workers N > 1`.
- `train_in_task`: one worker as one Ray task, in a worker process Ray keeps warm, no Train controller. A sweep's
  retrains run this way. Through Ray Train a retrain starts a controller and a worker, two new processes that
  each import torch, and a raylet starts no more processes at once than its node has CPUs: on 2 cores a retrain
  began 20-70 s after its search ended while the CPUs idled (BENCHMARKS.md). Its checkpoint lives in the run's
  folder (sessions.TaskSession), so a rerun after a crashed worker, or the retrain of a resumed sweep, continues
  from the last epoch.
- `train_in_trial`: the body of a Ray Tune trial's trainable. One worker runs the loop in the trial's own process
  (sessions.TuneSession; Tune reuses it for the architecture's next trial); N > 1 workers drive a TorchTrainer
  that reports to Tune.

`uses_ray_train` is the one rule that decides between one process and Ray Train.
"""

from __future__ import annotations

import errno
import json
import os
import queue
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import ray
from ray.exceptions import RayError, RayTaskError
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer
from ray.util.queue import Empty, Queue

from jobs.engine.atomic import replacing
from jobs.engine.errors import Diverged
from jobs.engine.measure.final_evaluation import ONNX_FILE, PREDICTIONS_FILE, UNDEPLOYABLE_ONNX_FILE
from jobs.engine.run.cluster import Workers
from jobs.engine.run.lost_node import lost_node
from jobs.engine.run_result import RESULT_FILE, Metrics, RunResult, Summary, build_result
from jobs.engine.train.loop import run_loop, train_func_per_worker
from jobs.engine.train.prepare import LoopRequest
from jobs.engine.train.progress import print_epoch, print_summary, say
from jobs.engine.train.sessions import DIVERGED_FILE, TaskSession, TuneSession
from jobs.engine.train.summary import SUMMARY_FILE


def uses_ray_train(workers: Workers) -> bool:
    """Ray Train (a controller and N worker processes) only where there is something to synchronise."""
    return workers.count > 1


def storage_path(storage: str | Path) -> str:
    """Absolute local folder, or a pyarrow filesystem URI (s3://, gs://, ...) passed through as it is."""
    return str(storage) if "://" in str(storage) else str(Path(storage).resolve())


def make_trainer(model: str, config: dict[str, Any], data_ref: ray.ObjectRef, workers: Workers,
                 storage: str | Path,
                 name: str, progress: Queue | None = None, max_failures: int = 1,
                 callbacks: list | None = None, evaluate_after: bool = True) -> TorchTrainer:
    request = LoopRequest(model, config, data_ref, progress, evaluate_after=evaluate_after)
    return TorchTrainer(
        train_func_per_worker,
        train_loop_config={"request": request},  # Ray Train passes the loop a dict
        scaling_config=ScalingConfig(num_workers=workers.count, use_gpu=workers.use_gpu,
                                     resources_per_worker=workers.resources()),
        run_config=RunConfig(name=name, storage_path=storage_path(storage),
                             failure_config=FailureConfig(max_failures=max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=1),
                             callbacks=callbacks),
    )


def fit_with_progress(trainer: TorchTrainer, progress: Queue | None, label: str = "") -> Any:
    """Run fit() in a thread while this thread prints the epoch lines the workers send."""
    results: list[Any] = []  # ray.train.Result
    errors: list[BaseException] = []

    def fit() -> None:
        try:
            results.append(trainer.fit())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            errors.append(exc)

    thread = threading.Thread(target=fit, daemon=True)
    thread.start()
    while thread.is_alive() or (progress is not None and not progress.empty()):
        if progress is None:
            thread.join(0.5)
            continue
        try:
            print_epoch(progress.get(timeout=0.5), label)
        except Empty:
            pass
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


def train_with_ray_train(model: str, config: dict[str, Any], data_ref: ray.ObjectRef, workers: Workers, output: Path,
          name: str, show_progress: bool = True, max_failures: int = 1, label: str = "") -> RunResult:
    """Train one model through Ray Train and write OUTPUT/NAME/result.json; returns the result.

    LABEL starts each epoch line, for runs that train at the same time."""
    progress = Queue(maxsize=1000) if show_progress else None
    trainer = make_trainer(model, config, data_ref, workers, output, name, progress, max_failures)
    started, started_at = time.perf_counter(), datetime.now(UTC).isoformat()
    result = fit_with_progress(trainer, progress, label)
    with result.checkpoint.as_directory() as folder:
        if (Path(folder) / DIVERGED_FILE).is_file():
            raise Diverged((Path(folder) / DIVERGED_FILE).read_text())
        # The finished run's report (jobs/engine/train/loop.py evaluate_once) is its last checkpoint.
        summary = json.loads((Path(folder) / SUMMARY_FILE).read_text())
        keep_beside_result(Path(folder), output / name)
    return write_result(model, config, summary, workers, started, started_at, output / name, show_progress)


def train_in_trial(model: str, config: dict[str, Any], data_ref: ray.ObjectRef, workers: Workers,
                   train_storage: str) -> None:
    """The body of a Tune trial: train CONFIG and report every epoch to Tune (its trainable calls this)."""
    if not uses_ray_train(workers):
        run_loop(LoopRequest(model, config, data_ref, evaluate_after=False), TuneSession())
        return
    from ray import tune as ray_tune
    from ray.tune.integration.ray_train import TuneReportCallback

    trial_id = ray_tune.get_context().get_trial_id()
    # No restarts inside the trial (max_failures=0): Ray Train retries every worker-group error alike, and a run
    # restarted from its checkpoint passes an injected fail_at_epoch, so a trial's own failure would not stay
    # failed. A worker lost with its node fails the trial instead, and Tune's FailureConfig runs the trial again
    # (tune/sweep/tuner.py): this trainer, under the same name in the same storage, then continues from its latest
    # checkpoint (Ray Train restores a run's checkpoints from its folder). A preemption that Ray was told of is
    # retried in here all the same (Ray Train's max_preemption_failures, unlimited by default).
    trainer = make_trainer(model, config, data_ref, workers, train_storage, name=trial_id, max_failures=0,
                           callbacks=[TuneReportCallback()], evaluate_after=False)
    result = trainer.fit()
    if result.checkpoint is not None:
        with result.checkpoint.as_directory() as folder:
            if (Path(folder) / DIVERGED_FILE).is_file():  # the trial fails, recorded with this reason
                raise Diverged((Path(folder) / DIVERGED_FILE).read_text())


# A retrain whose worker process or node goes away runs again from its last checkpoint, at most twice, as a sweep's
# trials do (tune/sweep/tuner.py NODE_LOSS_RETRIES).
ATTEMPTS = 3


# A generator task streams each epoch's metrics to the driver as it ends. Ray's own retry would replay the
# generator and find fewer epochs after a resume, so the driver retries instead (max_retries=0).
class Streamed(NamedTuple):
    """One item a retrain's task streams to its driver: an epoch's line, or at the end the run's summary."""

    epoch: Metrics | None = None
    summary: Summary | None = None


@ray.remote(max_retries=0)
def loop_task(request: LoopRequest, folder: str, submitted: float) -> Iterator[Streamed]:
    lines: queue.Queue[Metrics | None] = queue.Queue()
    request = replace(request, held_since=held_since(submitted), progress=lines)
    failure: list[BaseException] = []
    session = TaskSession(Path(folder))

    def work() -> None:
        try:
            run_loop(request, session)
        except BaseException as exc:  # noqa: BLE001 - raised again in the task's own thread below
            failure.append(exc)
        finally:
            lines.put(None)

    thread = threading.Thread(target=work, name="loop", daemon=True)
    thread.start()
    while (line := lines.get()) is not None:
        yield Streamed(epoch=line)
    thread.join()
    if failure:
        raise failure[0]
    # From the checkpoint, not from memory: a run resumed after its last epoch has no epoch left to run.
    keep_beside_result(session.checkpoint, Path(folder), move=True)
    yield Streamed(summary=json.loads((session.checkpoint / SUMMARY_FILE).read_text()))


def held_since(submitted: float) -> str:
    """When this task began to hold its CPU/GPU: a worker process Ray started for it holds them while it starts
    and imports torch, seconds before this function runs; a process that already ran, from now."""
    created = process_started()
    held = created if created is not None and created >= submitted else time.time()
    return datetime.fromtimestamp(held, UTC).isoformat()


def process_started() -> float | None:
    """This process's start as a Unix time, from Linux's /proc (its age in clock ticks since boot); None elsewhere."""
    try:
        after_name = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        # Field 22 is starttime, in clock ticks since boot; the fields after the name in ')' start at field 3.
        age = uptime - int(after_name[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return time.time() - age


def train_in_task(model: str, config: dict[str, Any], data_ref: ray.ObjectRef, workers: Workers, output: Path,
                  name: str, show_progress: bool = True, label: str = "") -> RunResult:
    """Train one model on one worker in a Ray task and write OUTPUT/NAME/result.json, as `train_with_ray_train`
    does for N workers. Raises ValueError for more than one worker."""
    if uses_ray_train(workers):
        raise ValueError(f"train_in_task runs one worker, not {workers.count}; use train_with_ray_train for DDP")
    run_dir = output / name
    run_dir.mkdir(parents=True, exist_ok=True)
    resources = {"num_cpus": workers.cpus_per_worker, "num_gpus": workers.gpus_per_worker if workers.use_gpu else 0}
    started, started_at = time.perf_counter(), datetime.now(UTC).isoformat()
    for attempt in range(1, ATTEMPTS + 1):
        try:
            summary = None
            for ref in loop_task.options(**resources).remote(LoopRequest(model, config, data_ref), str(run_dir),
                                                             time.time()):
                item = ray.get(ref)
                if item.summary is not None:
                    summary = item.summary
                elif item.epoch is not None and show_progress:
                    print_epoch(item.epoch, label)
            break
        except RayError as exc:
            # The loop itself raised (a RayTaskError that wraps no lost node): running it again would raise again.
            if (isinstance(exc, RayTaskError) and not lost_node(exc)) or attempt == ATTEMPTS:
                raise
            say(f"{label}lost its worker ({type(exc).__name__}); run again from its last checkpoint in {run_dir}")
    return write_result(model, config, summary, workers, started, started_at, run_dir, show_progress)


def keep_beside_result(checkpoint: Path, run_dir: Path, move: bool = False) -> None:
    """The final run's test predictions and ONNX model (model.onnx, or model.not-deployable.onnx), from its last
    checkpoint to beside its result.json, each whole or not at all (jobs/engine/atomic.py); MOVE them out of a
    checkpoint the run owns (a retrain's), rather than keep a second ONNX file there."""
    run_dir.mkdir(parents=True, exist_ok=True)
    onnx = (ONNX_FILE, UNDEPLOYABLE_ONNX_FILE)
    for name in (PREDICTIONS_FILE, *onnx):
        if not (checkpoint / name).is_file():
            continue
        if name in onnx:  # an earlier attempt's ONNX verdict is superseded by this one's: never both names
            for other in set(onnx) - {name}:
                (run_dir / other).unlink(missing_ok=True)
        try:
            if move:  # atomic within one filesystem, where a retrain's checkpoint lives beside its result
                os.replace(checkpoint / name, run_dir / name)
                continue
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
        with replacing(run_dir / name) as temporary:  # whole or not at all: a copy cut short is never trusted
            shutil.copyfile(checkpoint / name, temporary)
        if move:
            (checkpoint / name).unlink()


def write_result(model: str, config: dict[str, Any], summary: Summary, workers: Workers, started: float,
                 started_at: str, run_dir: Path, show: bool = True) -> RunResult:
    """RUN_DIR/result.json from the worker's summary; STARTED is the driver's perf_counter when it asked."""
    record = build_result(model, config, summary, workers, time.perf_counter() - started)
    # When and on what it ran, for the sweep's timeline and its cluster-busy figure: from its worker's start, since
    # the wait for a free worker before it held nothing.
    record.started_at = summary.get("started_at") or started_at
    record.finished_at = datetime.now(UTC).isoformat()
    record.resources = workers.held()
    record.write(run_dir / RESULT_FILE)
    if show:
        print_summary(record, run_dir / RESULT_FILE)
    return record
