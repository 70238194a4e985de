"""The parallel-coordinates figure of "What the search learned" (tune/report/search.py): one line per trial across
its sampled hyperparameters and its validation accuracy, from tune/analysis/search_insights.py's positions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from tune.analysis.search_insights import is_number


def draw_parallel_coordinates(data: Mapping[str, Any], title: str | None = None, width_in: float = 8.0,
                              height_in: float = 4.0, dpi: int = 100) -> Figure:
    """The figure for `parallel_coordinates` DATA (tune/analysis/search_insights.py): trials coloured by
    val_accuracy (viridis, best brightest, drawn last so they are on top); trials without a score grey and dashed."""
    axes, lines = data["axes"], data["lines"]
    figure = Figure(figsize=(width_in, height_in), dpi=dpi)
    plot = figure.add_subplot(1, 1, 1)
    scores = [line["val_accuracy"] for line in lines if is_number(line.get("val_accuracy"))]
    norm = Normalize(min(scores), max(scores)) if scores and min(scores) < max(scores) else Normalize(0, 1)
    cmap = colormaps["viridis"]
    xs = list(range(len(axes)))
    for line in sorted(lines, key=lambda ln: ln["val_accuracy"] if is_number(ln.get("val_accuracy")) else -1.0):
        points = [(x, y) for x, y in zip(xs, line["positions"], strict=True) if y is not None]
        if not points:
            continue
        scored = is_number(line.get("val_accuracy"))
        plot.plot(*zip(*points, strict=True), color=cmap(norm(line["val_accuracy"])) if scored else "0.7",
                  linestyle="-" if scored else "--", linewidth=1.2, alpha=0.9 if scored else 0.6)
    for x, axis in zip(xs, axes, strict=True):
        plot.axvline(x, color="0.3", linewidth=0.8)
        for tick, label in zip(axis["ticks"], axis["labels"], strict=True):
            plot.annotate(label, (x, tick), xytext=(3, 0), textcoords="offset points", fontsize=7, va="center")
    crowded = len(axes) > 6  # long names of neighbouring axes would run into each other
    plot.set_xticks(xs, [a["key"] + (" (log)" if a["scale"] == "log" else "") for a in axes], fontsize=8,
                    rotation=20 if crowded else 0, ha="right" if crowded else "center")
    plot.set_yticks([])
    plot.set_ylim(-0.05, 1.05)
    plot.set_xlim(-0.2, max(len(axes) - 1, 0) + 0.6)
    for side in ("top", "right", "left"):
        plot.spines[side].set_visible(False)
    if title:
        plot.set_title(title, fontsize=10)
    figure.tight_layout()
    return figure
