"""Are a model's confidences honest? Calibration measures from stored test probabilities.

Inputs everywhere: PROBS, float [N, C], each row a probability distribution over the C classes (softmax outputs,
not logits), and LABELS, int [N] in 0..C-1; numpy arrays, lists, or torch tensors on any device. Every function
raises ValueError on mismatched shapes, an empty set, labels out of range, or rows that are not distributions.

- `expected_calibration_error`: ECE over 15 equal-width confidence bins (Guo, Pleiss, Sun & Weinberger 2017,
  "On Calibration of Modern Neural Networks", ICML, eq. 3 and section 2).
- `negative_log_likelihood`: mean -ln p(true class), in nats (Guo et al. 2017, section 2).
- `brier_score`: mean over images of the sum over classes of squared error (Brier 1950).
- `reliability_diagram`: per-bin count, mean confidence and accuracy (Guo et al. 2017, figure 1; DeGroot &
  Fienberg 1983).
- `calibration_summary`: all of them as one JSON-ready dict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, TypedDict

import numpy as np

from jobs.engine.measure.registry import on_predictions

N_BINS = 15  # Guo et al. (2017) use M = 15 bins throughout their experiments
EPSILON = 1e-12  # NLL's floor on a probability: one confident mistake costs ln(1e12) = 27.6 nats, not infinity
ROW_SUM_TOLERANCE = 1e-3  # float32 softmax rows sum to 1 within ~1e-6; 1e-3 still catches logits passed by mistake


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin (lower, upper], confidences and accuracies in 0..1."""

    lower: float
    upper: float
    count: int  # images whose top-class confidence falls in the bin
    mean_confidence: float | None  # None for an empty bin
    accuracy: float | None  # share of those images predicted right; None for an empty bin


def _numpy(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor, possibly on a GPU: numpy cannot read device memory
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def checked(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """PROBS as float64 [N, C] and LABELS as int64 [N], after the checks in the module docstring."""
    p, y = _numpy(probs).astype(np.float64), _numpy(labels)
    if p.ndim != 2 or y.ndim != 1 or p.shape[0] != y.shape[0] or p.shape[0] == 0:
        raise ValueError(f"expected probabilities [N, C] and labels [N] with N > 0, got {p.shape} and {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers, got {y.dtype}")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"labels must lie in 0..{p.shape[1] - 1}, got {y.min()}..{y.max()}")
    if not np.isfinite(p).all() or p.min() < 0 or np.abs(p.sum(axis=1) - 1).max() > ROW_SUM_TOLERANCE:
        raise ValueError("each row of probabilities must be non-negative and sum to 1 (softmax outputs, not logits)")
    return p, y.astype(np.int64)


def reliability_diagram(probs: Any, labels: Any, n_bins: int = N_BINS) -> list[ReliabilityBin]:
    """N_BINS equal-width bins of top-class confidence over [0, 1]: count, mean confidence and accuracy in each.

    Bin m (1-based) holds the images whose confidence max_c p_c lies in ((m - 1)/M, m/M], as B_m in Guo et al.
    (2017), section 2, with edges from numpy.linspace; the prediction is the arg-max class (the first on ties,
    as numpy's argmax). Raises ValueError on n_bins < 1 and as `checked` does.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    p, y = checked(probs, labels)
    confidence, correct = p.max(axis=1), p.argmax(axis=1) == y
    # Edges from linspace and the test edge[m] < conf <= edge[m+1], as the reference implementation of Guo et
    # al. (github.com/gpleiss/temperature_scaling, _ECELoss) does, so a confidence of exactly 0.2 lands in the same
    # bin there and here. A distribution's top probability is at least 1/C > 0, so the clip is only a guard.
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    bins = []
    for m in range(n_bins):
        inside = index == m
        count = int(inside.sum())
        bins.append(ReliabilityBin(float(edges[m]), float(edges[m + 1]), count,
                                   float(confidence[inside].mean()) if count else None,
                                   float(correct[inside].mean()) if count else None))
    return bins


def expected_calibration_error(probs: Any, labels: Any, n_bins: int = N_BINS) -> float:
    """ECE = sum over bins of |B_m| / N * |acc(B_m) - conf(B_m)|, in 0..1 (Guo et al. 2017, eq. 3).

    Bins as in `reliability_diagram`; empty bins add nothing. Raises ValueError as `reliability_diagram` does.
    """
    bins = reliability_diagram(probs, labels, n_bins)
    total = sum(b.count for b in bins)
    return float(sum(b.count / total * abs(b.accuracy - b.mean_confidence) for b in bins if b.count))


def negative_log_likelihood(probs: Any, labels: Any, epsilon: float = EPSILON) -> float:
    """Mean over images of -ln p(true class), natural log (nats); p clipped to [EPSILON, 1] first.

    The clip keeps one zero probability on the true class from making the mean infinite. Raises ValueError as
    `checked` does.
    """
    p, y = checked(probs, labels)
    return float(-np.log(np.clip(p[np.arange(len(y)), y], epsilon, 1.0)).mean())


def brier_score(probs: Any, labels: Any) -> float:
    """Multi-class Brier score: (1/N) sum_i sum_c (p_ic - y_ic)^2 with y one-hot, in 0..2.

    Brier (1950), "Verification of forecasts expressed in terms of probability", Monthly Weather Review 78(1).

    Brier's original normalisation: summed over the C classes and averaged over images only, not divided by C
    (nor halved, as the binary score of the positive class alone would be); a perfect forecaster scores 0, a
    confident wrong one 2. Raises ValueError as `checked` does.
    """
    p, y = checked(probs, labels)
    one_hot = np.zeros_like(p)
    one_hot[np.arange(len(y)), y] = 1.0
    return float(((p - one_hot) ** 2).sum(axis=1).mean())


class Calibration(TypedDict):
    """`calibration_summary`: the three measures, the accuracy and the reliability diagram's bins."""

    ece: float
    nll: float
    brier: float
    accuracy: float
    n_bins: int
    bins: list[dict[str, float | int | None]]  # ReliabilityBin as a dict


def calibration_summary(probs: Any, labels: Any, n_bins: int = N_BINS) -> Calibration:
    """{"ece", "nll", "brier", "accuracy", "n_bins", "bins": [ReliabilityBin as dict]} for the report.

    Raises ValueError as `checked` does.
    """
    p, y = checked(probs, labels)
    bins = reliability_diagram(p, y, n_bins)
    return {
        "ece": expected_calibration_error(p, y, n_bins),
        "nll": negative_log_likelihood(p, y),
        "brier": brier_score(p, y),
        "accuracy": float((p.argmax(axis=1) == y).mean()),
        "n_bins": n_bins,
        "bins": [asdict(b) for b in bins],
    }


@on_predictions("calibration")
def calibration_fields(labels: Any, predicted: Any, probabilities: Any) -> dict[str, Any]:
    """RunResult's `ece`, `nll` and `brier` of a classifier's test PROBABILITIES [N, 10] against LABELS [N]; {} for
    the detector (PROBABILITIES None). PREDICTED is not read: the measures are of the probabilities."""
    if probabilities is None:
        return {}
    summary = calibration_summary(probabilities, labels)
    return {key: summary[key] for key in ("ece", "nll", "brier")}
