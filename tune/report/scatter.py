"""The report's one accuracy-against-cost scatter: a point per trained model with its spread over seeds, and the
Pareto front (tune/analysis/stats.py `pareto_front`) outlined and joined. Every trade-off figure of the page draws
through it: accuracy against training time and parameters, and "What it costs"'s dollars, latency, GFLOPs and size."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from tune.analysis.row import ComparisonRow
from tune.report.figures import Palette, short_number

WIDE = 20  # a range of values this wide (largest over smallest) or wider reads on a log axis


def wide(values: Sequence[float]) -> bool:
    return max(values) / min(values) >= WIDE


def accuracy_scatter(points: Sequence[ComparisonRow], palette: Palette, x: str, xlabel: str, front: Sequence[str],
                     labels: Sequence[str] | None = None, log: bool = True) -> Figure:
    """Mean test accuracy (%) of POINTS against their column X (comparison.csv's name, all finite and positive), a
    label per point (LABELS, default the model), the models of FRONT outlined and, two or more, joined by a
    staircase; X on a log axis when LOG."""
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    xs = [r.value(x) or 0.0 for r in points]
    ys = [(r.test_accuracy or 0.0) * 100 for r in points]
    for r, label, value, accuracy in zip(points, labels or [r.model for r in points], xs, ys, strict=True):
        on_front = r.model in front
        ax.errorbar(value, accuracy, yerr=(r.test_accuracy_std or 0) * 100, fmt="o", ms=9 if on_front else 7,
                    color=palette.get(r.model, "grey"), mec="black" if on_front else "white", mew=1.5, capsize=3,
                    zorder=3)
        ax.annotate(label, (value, accuracy), xytext=(7, 5), textcoords="offset points", fontsize=9)
    if len(front) > 1:  # a one-model front is just its outlined point
        steps = sorted((value, accuracy) for r, value, accuracy in zip(points, xs, ys, strict=True) if r.model in front)
        ax.step(*zip(*steps, strict=True), where="post", ls="--", color="#444", lw=1.2, label="Pareto front", zorder=2)
        ax.legend(loc="lower right", frameon=False)
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(short_number))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    ax.margins(x=0.15, y=0.15)
    return fig
