"""What the one loop asks of a model family: its training batches and loss, and its evaluation.

A task is built on the worker from the validated uint8 data already on the worker's device. The loop owns
everything else (optimizer, schedule, precision, checkpoints, reporting), so every architecture shares it.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import nn

from jobs.engine.data.mnist import Mnist


class Task(Protocol):
    train_size: int

    def loss(self, model: nn.Module, indices: torch.Tensor) -> torch.Tensor:
        """Mean training loss of the batch made of these training-set indices (augmented as configured)."""

    def evaluate(self, model: nn.Module, split: str) -> dict[str, Any]:
        """Metrics on "val" or "test": at least loss, accuracy, f1_macro, f1_weighted, confusion_matrix."""


def make_task(kind: str, data: Mnist, config: dict[str, Any], device: torch.device) -> Task:
    if kind == "classification":
        from jobs.engine.tasks.classification import ClassificationTask

        return ClassificationTask(data, config, device)
    if kind == "detection":
        from jobs.engine.tasks.detection import DetectionTask

        return DetectionTask(data, config, device)
    raise ValueError(f"unknown task {kind!r}")
