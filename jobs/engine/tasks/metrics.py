"""Classification metrics shared by every task, computed the standard way (scikit-learn)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score

from jobs.engine.run_result import Evaluation


def classification_metrics(labels: np.ndarray, predictions: np.ndarray, loss: float) -> Evaluation:
    return {
        "loss": float(loss),
        "accuracy": float((labels == predictions).mean()) if len(labels) else 0.0,
        "f1_macro": float(f1_score(labels, predictions, average="macro", labels=range(10), zero_division=0)),
        "f1_weighted": float(f1_score(labels, predictions, average="weighted", labels=range(10), zero_division=0)),
        "per_class_f1": f1_score(labels, predictions, average=None, labels=range(10), zero_division=0).tolist(),
        "confusion_matrix": confusion_matrix(labels, predictions, labels=range(10)).tolist(),
        "predictions": predictions.tolist(),
        "labels": labels.tolist(),
    }
