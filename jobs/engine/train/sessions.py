"""What the one loop needs from Ray, from either of the two places it runs.

- `TrainSession`: a Ray Train worker (`python -m jobs.train`, retrains, trials with `--workers N > 1`): rank and
  world size from Train, DDP through `prepare_model`, reports and checkpoints to Train.
- `TuneSession`: a single-worker sweep trial runs the loop in the Tune trial's own process. A trial then starts
  one process instead of three (trial, Train controller, Train worker, each importing torch): seconds instead of
  twenty on a 2-core machine. One worker has nothing to synchronise, so the loop is the same code.
- `TaskSession`: a sweep's single-worker retrain runs the loop as one Ray task (jobs/engine/run/launch.py), in a worker
  process Ray keeps warm, with its checkpoint in the run's own folder.
"""

from __future__ import annotations

import platform
import shutil
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

import ray
import torch
from torch import nn

from jobs.engine.errors import Diverged
from jobs.engine.run_result import Metrics
from jobs.engine.train.cpus import usable_cpus

DIVERGED = "diverged"  # the metric a Ray Train worker reports instead of raising (TrainSession.diverged)
DIVERGED_FILE = "diverged.txt"  # ... and the file of its last checkpoint that says so


class Restorable(Protocol):
    """A checkpoint as the loop reads it: ray.train.Checkpoint, or the tests' folder (tests/local_session.py)."""

    def as_directory(self) -> AbstractContextManager[str]: ...


class Session(Protocol):
    """What the loop asks of wherever it runs: the classes below on Ray, and the tests' in-process double
    (tests/local_session.py) without it."""

    rank: int
    world: int
    device: torch.device

    def get_checkpoint(self) -> Restorable | None: ...

    def prepare_model(self, model: nn.Module) -> nn.Module: ...

    def cpus(self) -> int: ...  # the threads torch may compute with

    def report(self, metrics: Metrics, folder: str | None = None) -> None: ...

    def diverged(self, message: str) -> None: ...


class TrainSession:
    def __init__(self) -> None:
        import ray.train
        import ray.train.torch

        context = ray.train.get_context()
        self.rank, self.world = context.get_world_rank(), context.get_world_size()
        check_gpu_usable(ray.get_gpu_ids())
        self.device = ray.train.torch.get_device()

    def get_checkpoint(self) -> Restorable | None:
        return ray.train.get_checkpoint()

    def cpus(self) -> int:
        return assigned_cpus()

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return ray.train.torch.prepare_model(model)

    def report(self, metrics: Metrics, folder: str | None = None) -> None:
        checkpoint = ray.train.Checkpoint.from_directory(folder) if folder else None
        ray.train.report(metrics, checkpoint=checkpoint)

    def diverged(self, message: str) -> None:
        """Every rank sees the same all-reduced loss, so every rank reports the divergence and the workers end
        normally: raising would make FailureConfig restart the same deterministic divergence from scratch. The
        driver (jobs/engine/run/launch.py) finds the message in the run's last checkpoint and raises Diverged."""
        if self.rank != 0:
            ray.train.report({DIVERGED: message})
            return
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / DIVERGED_FILE).write_text(message)
            self.report({DIVERGED: message}, folder)


class OneProcessSession:
    """A single worker in a process Ray gave a share of the cluster: nothing to synchronise, no DDP."""

    rank, world = 0, 1

    def __init__(self) -> None:
        gpus = ray.get_gpu_ids()
        check_gpu_usable(gpus)
        # Ray sets CUDA_VISIBLE_DEVICES to this process's share of a GPU: the first visible device is ours.
        self.device = torch.device("cuda:0" if gpus else "cpu")
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model

    def cpus(self) -> int:
        return assigned_cpus()

    def diverged(self, message: str) -> None:
        """A trial or a retrain that diverges fails, recorded with this reason; neither is retried."""
        raise Diverged(message)


class TuneSession(OneProcessSession):
    def __init__(self) -> None:
        from ray import tune

        super().__init__()
        self.tune = tune

    def get_checkpoint(self) -> Restorable | None:
        return self.tune.get_checkpoint()

    def report(self, metrics: Metrics, folder: str | None = None) -> None:
        checkpoint = self.tune.Checkpoint.from_directory(folder) if folder else None
        self.tune.report(metrics, checkpoint=checkpoint)


class TaskSession(OneProcessSession):
    """Checkpoints go to FOLDER/checkpoint, replaced whole each epoch, so that a retried task, or the retrain of a
    resumed sweep, continues from the last epoch instead of starting over."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.checkpoint = folder / "checkpoint"

    def get_checkpoint(self) -> Restorable | None:
        from ray.train import Checkpoint

        # A task killed between the two renames below left only the previous epoch's folder.
        for folder in (self.checkpoint, self.checkpoint.with_name("checkpoint.old")):
            if folder.is_dir():
                return Checkpoint.from_directory(str(folder))
        return None

    def report(self, metrics: Metrics, folder: str | None = None) -> None:
        if folder is None:
            return
        staged, old = self.checkpoint.with_name("checkpoint.new"), self.checkpoint.with_name("checkpoint.old")
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(folder, staged)
        if self.checkpoint.is_dir():
            shutil.rmtree(old, ignore_errors=True)
            self.checkpoint.rename(old)
        staged.rename(self.checkpoint)
        shutil.rmtree(old, ignore_errors=True)


class GpuUnusable(RuntimeError):
    """Ray gave this run a GPU that torch cannot use: training on the CPU while holding the GPU would be slow
    and would keep the GPU from every other run, so the run fails with this one line instead."""


def check_gpu_usable(gpu_ids: list) -> None:
    """Raise GpuUnusable when Ray assigned GPUs but `torch.cuda.is_available()` is False on this node."""
    if gpu_ids and not torch.cuda.is_available():
        raise GpuUnusable(
            f"node {platform.node()}: Ray gave this run GPU {', '.join(map(str, gpu_ids))} but "
            f"torch.cuda.is_available() is False (torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
            "the node needs an NVIDIA driver that runs this CUDA (R580 or newer for CUDA 13) and a working device "
            "plugin, or run with --gpu off")


def assigned_cpus() -> int:
    """Threads for torch: the CPUs this process reserved from Ray (Ray may pin OMP_NUM_THREADS to 1, and the loop
    should use them all), but no more than this process may use on its node: a node may declare more logical CPUs
    than it has, or run under taskset, a cgroup's CPU quota or a SLURM allocation (jobs/engine/train/cpus.py)."""
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU") or 1
    return max(1, min(int(cpus), usable_cpus()))
