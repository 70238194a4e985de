"""A single-worker run as one Ray task: the one loop in a worker process that Ray keeps warm, no Train controller.

A sweep's retrains run this way. Through Ray Train a retrain starts a controller and a worker, two new processes
that each import torch, and a raylet starts no more processes at once than its node has CPUs: on 2 cores a
retrain began 20-70 s after its search ended while the CPUs idled (BENCHMARKS.md). A task runs in a process Ray
already has. Its checkpoint lives in the run's folder (jobs/session.py TaskSession), so a rerun after a crashed
worker, or the retrain of a resumed sweep, continues from the last epoch. Runs of N > 1 workers still go through
Ray Train's TorchTrainer (jobs/runner.py), which gives them DDP.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayError, RayTaskError

from jobs.engine.cluster import Workers
from jobs.engine.launch import write_result
from jobs.engine.loop import SUMMARY_FILE, run_loop
from jobs.engine.progress import print_epoch
from jobs.engine.sessions import TaskSession

ATTEMPTS = 2  # as FailureConfig(max_failures=1): a worker that dies is replaced once, from the last checkpoint


# A generator task streams each epoch's metrics to the driver as it ends. Ray's own retry would replay the
# generator and find fewer epochs after a resume, so the driver retries instead (max_retries=0).
@ray.remote(max_retries=0)
def loop_task(loop_config: dict[str, Any], folder: str, submitted: float) -> Iterator[dict[str, Any]]:
    loop_config = {**loop_config, "held_since": held_since(submitted)}
    lines: queue.Queue = queue.Queue()
    failure: list[BaseException] = []
    session = TaskSession(Path(folder))

    def work() -> None:
        try:
            run_loop({**loop_config, "progress": lines}, session)
        except BaseException as exc:  # noqa: BLE001 - raised again in the task's own thread below
            failure.append(exc)
        finally:
            lines.put(None)

    thread = threading.Thread(target=work, name="loop", daemon=True)
    thread.start()
    while (line := lines.get()) is not None:
        yield {"epoch": line}
    thread.join()
    if failure:
        raise failure[0]
    # From the checkpoint, not from memory: a run resumed after its last epoch has no epoch left to run.
    yield {"summary": json.loads((session.checkpoint / SUMMARY_FILE).read_text())}


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
                  name: str, show_progress: bool = True, label: str = "") -> dict[str, Any]:
    """Train one model on one worker in a Ray task and write OUTPUT/NAME/result.json, as `runner.train` does."""
    if workers.count != 1:
        raise ValueError(f"train_in_task runs one worker, not {workers.count}; use runner.train for DDP")
    run_dir = output / name
    run_dir.mkdir(parents=True, exist_ok=True)
    resources = {"num_cpus": workers.cpus_per_worker, "num_gpus": workers.gpus_per_worker if workers.use_gpu else 0}
    started, started_at = time.perf_counter(), datetime.now(UTC).isoformat()
    for attempt in range(1, ATTEMPTS + 1):
        try:
            summary = None
            for ref in loop_task.options(**resources).remote({"model": model, "config": config, "data": data_ref},
                                                             str(run_dir), time.time()):
                item = ray.get(ref)
                if "summary" in item:
                    summary = item["summary"]
                elif show_progress:
                    print_epoch(item["epoch"], label)
            break
        except RayError as exc:
            if isinstance(exc, RayTaskError) or attempt == ATTEMPTS:
                raise  # the loop itself raised: running it again would raise again
    return write_result(model, config, summary, workers, started, started_at, run_dir, show_progress)
