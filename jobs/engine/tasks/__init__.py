"""What the one loop asks of a model family: its training batches and loss, and its evaluation.

A task is built on the worker from the validated uint8 data already on the worker's device. The loop owns
everything else (optimizer, schedule, precision, checkpoints, reporting), so every architecture shares it.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import nn

from jobs.engine.data.mnist import Mnist
from jobs.engine.run_result import Evaluation


class Task(Protocol):
    """Everything the loop and the final measurements ask of a model family: nothing is told apart by hasattr."""

    kind: Literal["classification", "detection"]
    data: Mnist
    train_size: int
    static_shapes: bool  # every training batch has one shape: the loop may capture its step

    def loss(self, model: nn.Module, indices: torch.Tensor) -> torch.Tensor:
        """Mean training loss of the batch made of these training-set indices (augmented as configured)."""

    def evaluate(self, model: nn.Module, split: str) -> Evaluation:
        """Metrics on "val" or "test": at least loss, accuracy, f1_macro, f1_weighted, confusion_matrix."""

    def predict(self, model: nn.Module, images: torch.Tensor) -> np.ndarray:
        """The digit int64 [N] of each uint8 image [N, 28, 28] (a detector: of its top box, -1 where none)."""

    def test_outputs(self, model: nn.Module) -> tuple[np.ndarray, np.ndarray | None]:
        """(predicted digit int64 [N], softmax probabilities float32 [N, 10] or None for a detector) on the test
        split: what the test evaluation computed when it ran, else computed now."""


def make_task(kind: str, data: Mnist, config: dict[str, Any], device: torch.device) -> Task:
    if kind == "classification":
        from jobs.engine.tasks.classification import ClassificationTask

        return ClassificationTask(data, config, device)
    if kind == "detection":
        from jobs.engine.tasks.detection import DetectionTask

        return DetectionTask(data, config, device)
    raise ValueError(f"unknown task {kind!r}")
