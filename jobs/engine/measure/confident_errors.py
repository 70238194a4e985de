"""Confidently wrong: the test images a classifier gets wrong while its top softmax probability is above
CONFIDENCE. These are the errors a confidence threshold in front of the model would not catch: a model with fewer
errors in all may still have more of these (see the report's section, tune/report/confident_errors.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from jobs.engine.measure.registry import on_predictions

CONFIDENCE = 0.9  # above it, a prediction is one a user would usually accept without a second look


@on_predictions("confident_errors")
def confident_errors(labels: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray | None) -> dict[str, Any]:
    """{"confident_errors": how many of the N test images are wrong with top probability > CONFIDENCE}; {} for a
    detector (PROBABILITIES None: it has no softmax over digits). LABELS, PREDICTED: int [N]; PROBABILITIES:
    float [N, 10], rows summing to 1."""
    if probabilities is None:
        return {}
    wrong = np.asarray(predicted) != np.asarray(labels)
    return {"confident_errors": int((wrong & (probabilities.max(axis=1) > CONFIDENCE)).sum())}
