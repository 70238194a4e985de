"""Driver side of one training run: a TorchTrainer around the one loop, then `result.json`."""

from __future__ import annotations

import json
import platform
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ray
import torch
import torchvision
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer
from ray.util.queue import Empty, Queue

from jobs.engine.cluster import Workers
from jobs.engine.loop import SUMMARY_FILE, train_func_per_worker
from jobs.engine.progress import print_epoch, print_summary

RESULT_FILE = "result.json"


def storage_path(storage: str | Path) -> str:
    """Absolute local folder, or a pyarrow filesystem URI (s3://, gs://, ...) passed through as it is."""
    return str(storage) if "://" in str(storage) else str(Path(storage).resolve())


def make_trainer(model: str, config: dict[str, Any], data_ref: ray.ObjectRef, workers: Workers,
                 storage: str | Path,
                 name: str, progress: Queue | None = None, max_failures: int = 1,
                 callbacks: list | None = None) -> TorchTrainer:
    return TorchTrainer(
        train_func_per_worker,
        train_loop_config={"model": model, "config": config, "data": data_ref, "progress": progress},
        scaling_config=ScalingConfig(num_workers=workers.count, use_gpu=workers.use_gpu,
                                     resources_per_worker=workers.resources()),
        run_config=RunConfig(name=name, storage_path=storage_path(storage),
                             failure_config=FailureConfig(max_failures=max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=1),
                             callbacks=callbacks),
    )


def fit_with_progress(trainer: TorchTrainer, progress: Queue | None, label: str = "") -> Any:
    """Run fit() in a thread while this thread prints the epoch lines the workers send."""
    outcome: dict[str, Any] = {}

    def fit() -> None:
        try:
            outcome["result"] = trainer.fit()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            outcome["error"] = exc

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
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def environment(workers: Workers, device: str) -> dict[str, Any]:
    return {"torch": torch.__version__, "torchvision": torchvision.__version__, "ray": ray.__version__,
            "python": platform.python_version(), "device": device, "workers": workers.count,
            "use_gpu": workers.use_gpu, "cpus_per_worker": workers.cpus_per_worker,
            "host": platform.node()}


def build_result(model: str, config: dict[str, Any], summary: dict[str, Any], workers: Workers,
                 wall_time_s: float) -> dict[str, Any]:
    test = summary.get("test", {})
    result = {
        "model": model,
        # What the worker trained with: on CUDA the preset's GPU settings are applied there (jobs/config.py).
        "config": dict(summary.get("config", config)),
        "test_accuracy": test.get("accuracy"),
        "test_f1_macro": test.get("f1_macro"),
        "test_f1_weighted": test.get("f1_weighted"),
        "test_loss": test.get("loss"),
        "train_time_s": summary["train_time_s"],
        "compile_time_s": summary.get("compile_time_s", 0.0),  # capture of the static step, not in train_time_s
        "wall_time_s": wall_time_s,
        "epochs": len(summary["history"]),
        "params": summary["params"],
        "images_per_s": summary["images_per_s"],
        "peak_memory_mb": summary["peak_memory_mb"],
        "history": summary["history"],
        "confusion_matrix": test.get("confusion_matrix"),
        "per_class_f1": test.get("per_class_f1"),
        "test_predictions": test.get("predictions"),
        "test_labels": test.get("labels"),
        "val_accuracy": summary["validation"]["accuracy"],
        "env": environment(workers, summary["device"]),
    }
    result.update({f"test_{k}": v for k, v in test.items() if k.startswith("map")})
    return result


def train(model: str, config: dict[str, Any], data_ref: ray.ObjectRef, workers: Workers, output: Path,
          name: str, show_progress: bool = True, max_failures: int = 1, label: str = "") -> dict[str, Any]:
    """Train one model through Ray Train and write OUTPUT/NAME/result.json; returns the result.

    LABEL starts each epoch line, for runs that train at the same time."""
    progress = Queue(maxsize=1000) if show_progress else None
    trainer = make_trainer(model, config, data_ref, workers, output, name, progress, max_failures)
    started, started_at = time.perf_counter(), datetime.now(UTC).isoformat()
    result = fit_with_progress(trainer, progress, label)
    with result.checkpoint.as_directory() as folder:
        summary = json.loads((Path(folder) / SUMMARY_FILE).read_text())
    return write_result(model, config, summary, workers, started, started_at, output / name, show_progress)


def write_result(model: str, config: dict[str, Any], summary: dict[str, Any], workers: Workers, started: float,
                 started_at: str, run_dir: Path, show: bool = True) -> dict[str, Any]:
    """RUN_DIR/result.json from the worker's summary; STARTED is the driver's perf_counter when it asked."""
    record = build_result(model, config, summary, workers, time.perf_counter() - started)
    # When and on what it ran, for the sweep's timeline and its cluster-busy figure: from its worker's start, since
    # the wait for a free worker before it held nothing.
    record.update(started_at=summary.get("started_at") or started_at, finished_at=datetime.now(UTC).isoformat(),
                  first_step_at=summary.get("first_step_at"), resources=workers.held())
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / RESULT_FILE).write_text(json.dumps(record, indent=1, default=str))
    if show:
        print_summary(record, run_dir / RESULT_FILE)
    return record
