"""The cost verdicts of the comparison's rows: which architecture reached a target for the fewest dollars, and which
serves fastest among those within a margin of the most accurate (the report's "What it costs" words them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tune.analysis.cost import fmt_usd
from tune.analysis.row import ComparisonRow


@dataclass(frozen=True)
class Cheapest:
    model: str
    cost_usd: float
    time_s: float
    text: str


@dataclass(frozen=True)
class Fastest:
    model: str
    latency_ms: float
    accuracy: float
    best_accuracy: float
    text: str


def cheapest_to_target(rows: Sequence[ComparisonRow], time_key: str = "time_to_99_s",
                       cost_key: str = "cost_to_99_usd", target_label: str = "99%") -> Cheapest | None:
    """The architecture that reached the target for the fewest dollars: "cheapest to train to 99%: X, $Z".

    A row is a candidate when its TIME_KEY (seconds to the target, None = not reached) and COST_KEY (dollars to
    reach it, tune/analysis/cost.py `cost_to_reach` of that time) are both finite numbers. Ties go to the faster,
    then to the name first in sort order. None when no row reached the target.
    """
    candidates = [(cost, time, r.model) for r in rows
                  if (time := r.value(time_key)) is not None and (cost := r.value(cost_key)) is not None]
    if not candidates:
        return None
    cost, time, model = min(candidates)
    return Cheapest(model, cost, time, f"cheapest to train to {target_label}: {model}, {fmt_usd(cost)}")


def fastest_within(rows: Sequence[ComparisonRow], points: float = 0.5, accuracy_key: str = "test_accuracy",
                   latency_key: str = "latency_ms_p50", unit: str = "image") -> Fastest | None:
    """The fastest to serve among architectures within POINTS percentage points of the most accurate:
    "fastest to serve within 0.5 points of the best: X at Y ms per image".

    ROWS' ACCURACY_KEY is a fraction in [0, 1] (0.5 points = 0.005), LATENCY_KEY milliseconds per UNIT
    (tune/report/cost.py: the serving median at batch 1). Rows missing either are left out; the best accuracy is
    taken over the rows that have a latency. Ties go to the more accurate, then by name. None when no row has both.
    """
    candidates = [(latency, accuracy, r.model) for r in rows
                  if (accuracy := r.value(accuracy_key)) is not None and (latency := r.value(latency_key)) is not None]
    if not candidates:
        return None
    best_accuracy = max(accuracy for _, accuracy, _ in candidates)
    # The tolerance absorbs float noise such as 0.99 - 0.005 != 0.985 exactly.
    close = [c for c in candidates if c[1] >= best_accuracy - points / 100 - 1e-12]
    latency, accuracy, model = min(close, key=lambda c: (c[0], -c[1], c[2]))
    return Fastest(model, latency, accuracy, best_accuracy,
                   f"fastest to serve within {points:g} points of the best: {model} at {latency:.3g} ms per {unit}")
