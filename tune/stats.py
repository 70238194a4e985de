"""The two judgements the report makes: is a gap between two models real (McNemar), and which are worth it (Pareto)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, chi2

# Below this many discordant images the chi-square approximation is poor, so the exact binomial test is used.
EXACT_BELOW = 25


@dataclass(frozen=True)
class McNemar:
    b: int  # images the first model gets right and the second gets wrong
    c: int  # images the first model gets wrong and the second gets right
    statistic: float
    p_value: float
    method: str
    n: int  # images compared
    both_right: int = 0
    both_wrong: int = 0

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha


def correctness(predictions: Sequence[int], labels: Sequence[int]) -> np.ndarray:
    """Per-image right/wrong; the lengths must match, or the two lists are not the same test set."""
    pred, true = np.asarray(predictions), np.asarray(labels)
    if pred.shape != true.shape:
        raise ValueError(f"{len(pred)} predictions for {len(true)} labels")
    return pred == true


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool], exact_below: int = EXACT_BELOW) -> McNemar:
    """McNemar's test on paired per-image correctness of two models on the same test images.

    Only the discordant images (one right, the other wrong) carry information; under the null hypothesis that
    both models are equally accurate each of them is a fair coin flip.
    """
    a, b_ = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b_.shape:
        raise ValueError(f"cannot pair {a.size} images with {b_.size}")
    b, c = int(np.sum(a & ~b_)), int(np.sum(~a & b_))
    agree = {"n": int(a.size), "both_right": int(np.sum(a & b_)), "both_wrong": int(np.sum(~a & ~b_))}
    if b + c == 0:
        return McNemar(b, c, 0.0, 1.0, "no discordant images", **agree)
    if b + c < exact_below:
        p = binomtest(min(b, c), b + c, 0.5, alternative="two-sided").pvalue
        return McNemar(b, c, float(min(b, c)), min(1.0, float(p)), "exact binomial", **agree)
    statistic = (abs(b - c) - 1) ** 2 / (b + c)  # Edwards' continuity correction
    return McNemar(b, c, float(statistic), float(chi2.sf(statistic, df=1)), "chi-square, continuity-corrected",
                   **agree)


def pareto_front(accuracy: Mapping[str, float], cost: Mapping[str, float]) -> list[str]:
    """Names no other model beats on both counts (higher accuracy, lower cost), cheapest first.

    A model missing either number (a failed run) is not a candidate.
    """
    points = {name: (accuracy[name], cost[name]) for name in accuracy
              if name in cost and _finite(accuracy[name]) and _finite(cost[name])}

    def dominated(name: str) -> bool:
        acc, price = points[name]
        return any(a >= acc and p <= price and (a > acc or p < price) for other, (a, p) in points.items()
                   if other != name)

    return sorted((n for n in points if not dominated(n)), key=lambda n: (points[n][1], -points[n][0]))


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
