"""Digit detection on MNIST canvases (model `faster_rcnn`), through the same loop as the classifiers.

Training: the loss of a batch is the sum of Faster R-CNN's four losses (RPN objectness and box, RoI class and
box) on those training canvases. There is no augmentation: every canvas is already a random layout.

Evaluation, so that the detector sits in the same table as the classifiers:
- `map_50`, `map`: COCO mAP@0.5 and mAP@[.5:.95] (torchmetrics, pycocotools) on the split's canvases;
- `loss` = 1 - mAP@[.5:.95]. Not a training-style loss: Faster R-CNN computes losses only in train mode, with
  random RoI sampling; this is lower-is-better and comparable across detection runs only;
- classification of the split's plain 28x28 digits, each pasted alone at the centre of an empty canvas: the
  prediction is the label of the highest-scoring box. No box at all is a wrong answer; to keep the
  confusion matrix and F1 well-defined over classes 0-9 it is recorded as the class (label + 1) % 10, and
  `no_box` counts those cases.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from torchmetrics.detection import MeanAveragePrecision

from jobs.engine.data.mnist import Mnist
from jobs.engine.run_result import Evaluation
from jobs.engine.tasks.detection_data import Canvases, as_float, centred, split_canvases
from jobs.engine.tasks.metrics import classification_metrics

# Detection outputs are per image and post-processing loops over them in Python; larger batches buy nothing
# on a CPU and only add memory on a GPU.
EVAL_BATCH_CAP = 256


class DetectionTask:
    kind = "detection"
    static_shapes = False  # each canvas has its own box count: the eager loop trains it

    def __init__(self, data: Mnist, config: dict[str, Any], device: torch.device) -> None:
        self.data, self.config, self.device = data, config, device
        self.train = split_canvases(data, "train", config)
        self.train_size = len(self.train)
        self._eval: dict[str, Canvases] = {}  # built on first use: only rank 0 evaluates
        self.test_predictions: np.ndarray | None = None  # kept by the test evaluation for test_outputs

    def canvases(self, split: str) -> Canvases:
        if split not in self._eval:
            self._eval[split] = split_canvases(self.data, split, self.config)
        return self._eval[split]

    def loss(self, model: nn.Module, indices: torch.Tensor) -> torch.Tensor:
        # fp32 even on CUDA: bf16 box coordinates are only 0.5 px exact at 64-128 px, which costs mAP@.75+.
        # One [B, 1, C, C] tensor, not a list of images: the model's CanvasTransform takes it as the batch.
        losses = model(as_float(self.train.images[indices]), self.train.targets(indices))
        return sum(losses.values())

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> Evaluation:
        was_training = model.training
        model.eval()
        try:
            maps = self.mean_average_precision(model, self.canvases(split))
            labels = getattr(self.data, f"{split}_labels").cpu().numpy()
            predicted = self.classify(model, getattr(self.data, f"{split}_images"))
        finally:
            model.train(was_training)
        if split == "test":  # kept for the final evaluation (jobs/engine/measure/final_evaluation.py): no second pass
            self.test_predictions = predicted
        no_box = predicted < 0
        metrics = classification_metrics(labels, np.where(no_box, (labels + 1) % 10, predicted), 1.0 - maps["map"])
        return {**metrics, "map_50": maps["map_50"], "map": maps["map"], "no_box": int(no_box.sum())}

    def batches(self, n: int) -> list[slice]:
        step = min(self.config["eval_batch_size"], EVAL_BATCH_CAP)
        return [slice(start, start + step) for start in range(0, n, step)]

    def mean_average_precision(self, model: nn.Module, canvases: Canvases) -> dict[str, float]:
        # Only rank 0 evaluates: torchmetrics' default all-gather at compute() would wait forever for the others.
        metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", sync_on_compute=False)
        for batch in self.batches(len(canvases)):
            metric.update(on_host(model(as_float(canvases.images[batch]))), canvases.targets(batch, "cpu"))
        if not len(canvases):
            return {"map_50": 0.0, "map": 0.0}
        result = metric.compute()
        # torchmetrics reports -1 when a split has nothing to score; 0 keeps the numbers in [0, 1].
        return {"map_50": max(float(result["map_50"]), 0.0), "map": max(float(result["map"]), 0.0)}

    @torch.no_grad()
    def predict(self, model: nn.Module, images: torch.Tensor) -> np.ndarray:
        """The digit of the top box on each plain digit's canvas (-1 where none), as the test accuracy counts it."""
        was_training = model.training
        model.eval()
        try:
            return self.classify(model, images)
        finally:
            model.train(was_training)

    def test_outputs(self, model: nn.Module) -> tuple[np.ndarray, np.ndarray | None]:
        """(the digit of each plain test digit's top box int64 [N], -1 where none; None: a detector has no softmax
        over digits), from the test evaluation when it ran."""
        kept = self.test_predictions
        return (self.predict(model, self.data.test_images) if kept is None else kept), None

    def classify(self, model: nn.Module, images: torch.Tensor) -> np.ndarray:
        """Digit of the highest-scoring box on each plain digit's canvas; -1 where the detector finds none."""
        predicted = []
        for batch in self.batches(len(images)):
            outputs = model(as_float(centred(images[batch], self.config["canvas_size"])))
            predicted += top_labels(outputs)
        return np.asarray(predicted, dtype=np.int64)


def on_host(outputs: list[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
    """Detections moved to the host in one copy per field for the batch, not one per image."""
    counts = [len(out["scores"]) for out in outputs]
    fields = {k: torch.cat([out[k] for out in outputs]).cpu().split(counts) for k in ("boxes", "scores", "labels")}
    return [{k: parts[i] for k, parts in fields.items()} for i in range(len(outputs))]


def top_labels(outputs: list[dict[str, torch.Tensor]]) -> list[int]:
    """Digit of each image's highest-scoring box (-1 where there is none), with one host sync for the batch."""
    counts = [len(out["scores"]) for out in outputs]
    if not any(counts):
        return [-1] * len(outputs)
    # Scores are probabilities: a padding of -1 never wins the argmax.
    scores = pad_sequence([out["scores"] for out in outputs], batch_first=True, padding_value=-1.0)
    labels = pad_sequence([out["labels"] for out in outputs], batch_first=True)
    top = labels.gather(1, scores.argmax(1, keepdim=True))[:, 0].tolist()
    return [label - 1 if n else -1 for label, n in zip(top, counts, strict=True)]
