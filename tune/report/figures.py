"""What every figure of the report shares: the style, a colour per architecture, digit mosaics, and the one way a
figure reaches the page. Every figure is drawn as a matplotlib Figure; `png` turns it into the base64 PNG that the
templates put after `data:image/png;base64,`, where a section's data is put together."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from jobs.engine.finite import is_finite
from tune.analysis.row import ComparisonRow

STYLE = {"font.size": 9, "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
         "grid.alpha": 0.3, "axes.titleweight": "bold", "figure.dpi": 110}
DIGIT = 28  # side of an MNIST image in pixels
GAP = 4  # pixels between two tiles of a mosaic
CAPTION = 12  # pixels under a tile for its caption
Palette = dict[str, tuple[float, float, float, float]]  # model -> RGBA


def png(fig: Figure) -> str:
    """The figure as a base64 PNG for an <img src="data:image/png;base64,...">: the one encoding of every figure."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})  # constrained layout already trims margins
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def colours(models: list[str]) -> Palette:
    """One tab10 colour per architecture, in the sweep's order, the same in every figure."""
    palette = matplotlib.colormaps["tab10"]
    return {m: tuple(palette(i % 10)) for i, m in enumerate(models)}


def error_bars(rows: Sequence[ComparisonRow]) -> str:
    """What a scatter of ROWS (comparison rows, one point each) draws as vertical bars, in a caption's words: the
    bars only where a model has a spread over 2+ seeds, else that each point is a single run."""
    barred = [r.model for r in rows if r.seeds >= 2 and is_finite(r.test_accuracy_std)]
    if not barred:
        return "Each point is a single run (one seed), so there are no error bars."
    text = "Error bars: ± one standard deviation over seeds"
    single = [r.model for r in rows if r.model not in barred]
    if single:
        text += f"; {', '.join(single)} {'has' if len(single) == 1 else 'have'} a single run each, so no bar"
    return text + "."


def over_seeds(rows: Sequence[ComparisonRow]) -> str:
    """How many runs a per-model figure averages, from ROWS' `seeds`: "mean over 3 seeds", "mean over 2 to 3 seeds",
    or "one run per model (a single seed)", so a caption never says "mean over seeds" of one run."""
    counts = sorted({r.seeds for r in rows if r.seeds})
    if not counts or counts[-1] < 2:
        return "one run per model (a single seed)"
    if len(counts) == 1:
        return f"mean over {counts[0]} seeds"
    return f"mean over {counts[0]} to {counts[-1]} seeds"


def short_number(value: float, _pos: int | None = None) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def digit_mosaic(images: np.ndarray, captions: list[str], columns: int, title: str | None = None,
                 width_in: float = 6.4) -> Figure:
    """IMAGES (uint8 [k, 28, 28], ink bright on black as MNIST stores them) as a grid of COLUMNS tiles, dark ink on
    white, with a caption under each: one image and one axes, so a grid of 40 digits renders in milliseconds."""
    count = len(images)
    rows = max(1, -(-count // columns))
    step, tall = DIGIT + GAP, DIGIT + CAPTION
    canvas = np.zeros((rows * tall, columns * step), dtype=np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        canvas[r * tall: r * tall + DIGIT, c * step: c * step + DIGIT] = image
    inches_per_pixel = width_in / (columns * step)
    fig = Figure(figsize=(width_in, rows * tall * inches_per_pixel + (0.3 if title else 0.05)), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    for i, text in enumerate(captions):
        r, c = divmod(i, columns)
        ax.text(c * step + DIGIT / 2 - 0.5, r * tall + DIGIT + 0.5, text, ha="center", va="top", fontsize=6.5,
                in_layout=False)
    ax.set_ylim(rows * tall - 0.5, -0.5)
    ax.set_xlim(-0.5, columns * step - GAP - 0.5)
    if title:
        ax.set_title(title, fontsize=9, loc="left")
    return fig
