"""Digit classification: the task of every architecture except the detector."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from jobs.engine.data.augment import prepare_batch
from jobs.engine.data.mnist import Mnist
from jobs.engine.precision import autocast
from jobs.engine.run_result import Evaluation
from jobs.engine.tasks.metrics import classification_metrics


class ClassificationTask:
    kind = "classification"
    # A batch is the same shape every step: the loop may capture its step (jobs/engine/train/static_step.py).
    static_shapes = True

    def __init__(self, data: Mnist, config: dict[str, Any], device: torch.device) -> None:
        self.data, self.config, self.device = data, config, device
        self.train_size = len(data.train_labels)
        self.test_probabilities: torch.Tensor | None = None  # kept by the test evaluation for test_outputs

    def loss(self, model: nn.Module, indices: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        shift, rotate = (cfg["shift_px"], cfg["rotate_deg"]) if cfg["augment"] else (0.0, 0.0)
        x = prepare_batch(self.data.train_images[indices], True, shift, rotate, cfg["channels_last"])
        with autocast(self.device, cfg["precision"]):
            logits = model(x)
        return F.cross_entropy(logits.float(), self.data.train_labels[indices],
                               label_smoothing=cfg["label_smoothing"])

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> Evaluation:
        images, labels = getattr(self.data, f"{split}_images"), getattr(self.data, f"{split}_labels")
        was_training = model.training
        model.eval()
        # Summed on the device: one host sync for the whole split, not one per batch.
        total_loss, predictions, probabilities = torch.zeros((), device=labels.device), [], []
        for start in range(0, len(labels), self.config["eval_batch_size"]):
            batch = slice(start, start + self.config["eval_batch_size"])
            with autocast(self.device, self.config["precision"]):
                logits = model(prepare_batch(images[batch], False, channels_last=self.config["channels_last"])).float()
            total_loss += F.cross_entropy(logits, labels[batch], reduction="sum")
            predictions.append(logits.argmax(1))
            if split == "test":
                probabilities.append(logits.softmax(1))
        model.train(was_training)
        if split == "test":  # kept for the final evaluation (jobs/engine/measure/final_evaluation.py): no second pass
            self.test_probabilities = torch.cat(probabilities) if probabilities else None
        predicted = torch.cat(predictions).cpu().numpy() if predictions else labels.cpu().numpy()[:0]
        return classification_metrics(labels.cpu().numpy(), predicted, float(total_loss) / max(len(labels), 1))

    @torch.no_grad()
    def probabilities(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities float32 [N, 10] of uint8 IMAGES [N, 28, 28], in the run's precision."""
        was_training = model.training
        model.eval()
        out = []
        for start in range(0, len(images), self.config["eval_batch_size"]):
            x = prepare_batch(images[start:start + self.config["eval_batch_size"]].to(self.device), False,
                              channels_last=self.config["channels_last"])
            with autocast(self.device, self.config["precision"]):
                out.append(model(x).float().softmax(1))
        model.train(was_training)
        return torch.cat(out) if out else torch.zeros(0, 10, device=self.device)

    def predict(self, model: nn.Module, images: torch.Tensor) -> np.ndarray:
        """The predicted digit int64 [N] of uint8 IMAGES [N, 28, 28]."""
        return self.probabilities(model, images).argmax(1).cpu().numpy()

    def test_outputs(self, model: nn.Module) -> tuple[np.ndarray, np.ndarray | None]:
        """(predicted digit int64 [N], probabilities float32 [N, 10]) on the test split, from the test evaluation
        when it ran (no second pass)."""
        kept = self.test_probabilities
        probabilities = (self.probabilities(model, self.data.test_images) if kept is None else kept).cpu().numpy()
        return probabilities.argmax(1), probabilities
