"""Robustness (jobs/engine/data/corruptions.py): every final model's accuracy on each corruption of the test images and
their mean, as the comparison's robust_<corruption> columns hold them; a figure; and a verdict sentence when the
ranking under corruption is not the clean one."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from jobs.engine.data.corruptions import CORRUPTIONS
from tune.analysis.results import SweepResults
from tune.analysis.row import ComparisonRow
from tune.report.figures import Palette, over_seeds, png

# Short headings, so that a column per corruption fits a 1000 px window.
SHORT = {"gaussian_noise": "noise", "impulse_noise": "impulse"}


def heading(name: str) -> str:
    return SHORT.get(name, name.replace("_", " "))


def robustness(rows: list[ComparisonRow], results: SweepResults, colours: Palette) -> dict[str, Any] | None:
    """The robustness card from the comparison's rows (best first): a table row per model that was measured."""
    names = [n for n in CORRUPTIONS if any(r.robust.get(n) is not None for r in rows)]
    measured = [r for r in rows if any(r.robust.get(n) is not None for n in names)]
    if not measured:
        return None
    table = []
    for r in measured:
        scores = [r.robust.get(n) for n in names]
        mean = r.mean("robustness_mean")
        if mean is None:
            known = [s for s in scores if s is not None]
            mean = sum(known) / len(known)
        table.append({"model": r.model, "clean": r.test_accuracy, "scores": scores, "mean": mean})
    images = sorted({run.config.get("robustness_images") for r in measured for run in results.finals.get(r.model, [])
                     if run.config.get("robustness_images")})
    worst = min(names, key=lambda n: sum(t["scores"][names.index(n)] or 0 for t in table))
    return {"headings": [heading(n) for n in names], "names": names,
            "rows": [{"model": t["model"], "clean": _pct(t["clean"]), "scores": [_pct(s) for s in t["scores"]],
                      "mean": _pct(t["mean"])} for t in table],
            "figure": png(fig_robustness(table, names, colours)), "verdict": verdict(table),
            "images": " or ".join(f"{n:,}" for n in images) if images else "", "worst": heading(worst),
            "per_seed": over_seeds(measured)}


def verdict(table: list[dict[str, Any]]) -> str:
    """A sentence when the models' order by mean accuracy under corruption differs from their clean order."""
    clean = [t["model"] for t in sorted(table, key=lambda t: -(t["clean"] or 0))]
    corrupted = [t["model"] for t in sorted(table, key=lambda t: -t["mean"])]
    if len(table) < 2:
        return ""
    if clean == corrupted:
        return (f"Corruption does not change the ranking: {' > '.join(clean)} both on clean images and on average "
                "over the corruptions.")
    return (f"Under corruption the ranking changes: on clean images {' > '.join(clean)}; on average over the "
            f"corruptions {' > '.join(corrupted)}. Where digits may arrive shifted, rotated, noisy or faded, the "
            "clean ranking is not the one to choose by.")


def fig_robustness(table: list[dict[str, Any]], names: list[str], colours: Palette) -> Figure:
    """Accuracy per corruption, a line per model, clean accuracy first for reference."""
    fig = Figure(figsize=(7.2, 3.6), layout="constrained")
    ax = fig.add_subplot()
    labels = ["clean", *(heading(n) for n in names), "mean"]
    for t in table:
        values = [t["clean"], *t["scores"]]
        points = [(i, v * 100) for i, v in enumerate(values) if v is not None]
        colour = colours.get(t["model"], "#555")
        ax.plot(*zip(*points, strict=True), marker="o", ms=4, lw=1.3, color=colour, label=t["model"])
        ax.plot(len(labels) - 1, t["mean"] * 100, marker="D", ms=6, color=colour, mec="black", mew=0.6)
    ax.axvspan(len(labels) - 1.5, len(labels) - 0.5, color="#eef2f7", zorder=0)
    ax.set_xticks(range(len(labels)), labels, rotation=25, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(frameon=False, fontsize=8, loc="lower left")
    return fig


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"
