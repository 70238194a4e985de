"""What the one loop needs from Ray, from either of the two places it runs.

- `TrainSession`: a Ray Train worker (`python -m jobs.train`, retrains, trials with `--workers N > 1`): rank and
  world size from Train, DDP through `prepare_model`, reports and checkpoints to Train.
- `TuneSession`: a single-worker sweep trial runs the loop in the Tune trial's own process. A trial then starts
  one process instead of three (trial, Train controller, Train worker, each importing torch): seconds instead of
  twenty on a 2-core machine. One worker has nothing to synchronise, so the loop is the same code.
"""

from __future__ import annotations

import os
from typing import Any

import ray
import torch
from torch import nn


class TrainSession:
    def __init__(self) -> None:
        import ray.train
        import ray.train.torch

        context = ray.train.get_context()
        self.rank, self.world = context.get_world_rank(), context.get_world_size()
        self.device = ray.train.torch.get_device()

    def get_checkpoint(self) -> Any:
        return ray.train.get_checkpoint()

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return ray.train.torch.prepare_model(model)

    def report(self, metrics: dict[str, Any], folder: str | None = None) -> None:
        checkpoint = ray.train.Checkpoint.from_directory(folder) if folder else None
        ray.train.report(metrics, checkpoint=checkpoint)


class TuneSession:
    rank, world = 0, 1

    def __init__(self) -> None:
        from ray import tune

        self.tune = tune
        gpus = ray.get_gpu_ids()
        # Ray sets CUDA_VISIBLE_DEVICES to the trial's share of a GPU: the first visible device is ours.
        self.device = torch.device("cuda:0" if gpus and torch.cuda.is_available() else "cpu")
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)

    def get_checkpoint(self) -> Any:
        return self.tune.get_checkpoint()

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model

    def report(self, metrics: dict[str, Any], folder: str | None = None) -> None:
        checkpoint = self.tune.Checkpoint.from_directory(folder) if folder else None
        self.tune.report(metrics, checkpoint=checkpoint)


def assigned_cpus() -> int:
    """Threads for torch: the CPUs this process reserved from Ray (Ray may pin OMP_NUM_THREADS to 1, and the loop
    should use them all), but no more than the machine has: a node may declare more logical CPUs than cores."""
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU") or 1
    return max(1, min(int(cpus), os.cpu_count() or 1))
