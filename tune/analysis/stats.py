"""Which models are worth it: the Pareto front of accuracy against a cost. Whether a gap between two models is
real is tune/analysis/significance.py's question (McNemar over every pair and seed, Holm, bootstrap)."""

from __future__ import annotations

from collections.abc import Mapping

from jobs.engine.finite import is_finite


def pareto_front(accuracy: Mapping[str, float], cost: Mapping[str, float]) -> list[str]:
    """Names no other model beats on both counts (higher accuracy, lower cost), cheapest first.

    A model missing either number (a failed run) is not a candidate.
    """
    points = {name: (accuracy[name], cost[name]) for name in accuracy
              if name in cost and is_finite(accuracy[name]) and is_finite(cost[name])}

    def dominated(name: str) -> bool:
        acc, price = points[name]
        return any(a >= acc and p <= price and (a > acc or p < price) for other, (a, p) in points.items()
                   if other != name)

    return sorted((n for n in points if not dominated(n)), key=lambda n: (points[n][1], -points[n][0]))
