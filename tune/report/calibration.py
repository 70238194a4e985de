"""Calibration (jobs/engine/measure/calibration.py): are a classifier's confidences honest? ECE over 15 bins, NLL and
Brier per classifier, and one reliability diagram with a line per model from the probabilities it kept."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from jobs.engine.measure.calibration import N_BINS, calibration_summary, reliability_diagram
from tune.analysis.row import ComparisonRow
from tune.report.figures import Palette, over_seeds, png
from tune.report.predictions import SweepPredictions

MEASURES = ("ece", "nll", "brier")


def pooled(predictions: SweepPredictions, model: str) -> tuple[np.ndarray, np.ndarray] | None:
    """MODEL's test probabilities and labels, every seed's stacked; None for a model without probabilities."""
    seeds = [p for p in (predictions.runs.get(model) or {}).values() if p.probabilities is not None]
    if not seeds:
        return None
    return np.concatenate([p.probabilities for p in seeds]), np.concatenate([p.labels for p in seeds])


def calibration(rows: list[ComparisonRow], predictions: SweepPredictions, colours: Palette) -> dict | None:
    """The calibration card: a row per classifier (the comparison's mean over seeds of result.json's ECE, NLL and
    Brier; computed from predictions.npz where result.json lacks them) and the reliability diagram."""
    table, curves = [], []
    for row in rows:
        model, probs = row.model, pooled(predictions, row.model)
        values = {k: row.mean(k) for k in MEASURES}
        if probs is not None and any(v is None for v in values.values()):
            per_seed = [calibration_summary(p.probabilities, p.labels) for p in predictions.runs[model].values()
                        if p.probabilities is not None]
            values = {k: values[k] if values[k] is not None else float(np.mean([s[k] for s in per_seed]))
                      for k in MEASURES}
        if all(v is None for v in values.values()):
            continue
        confidence = f"{probs[0].max(axis=1).mean() * 100:.2f}%" if probs is not None else "—"
        table.append({"model": model, "ece": _fmt(values["ece"]), "nll": _fmt(values["nll"]),
                      "brier": _fmt(values["brier"]), "confidence": confidence,
                      "accuracy": f"{row.test_accuracy * 100:.2f}%" if row.test_accuracy is not None else "—"})
        if probs is not None:
            curves.append((model, values["ece"], reliability_diagram(*probs, N_BINS)))
    if not table:
        return None
    measured = [r for r in rows if r.model in {t["model"] for t in table}]
    several = any(r.seeds > 1 for r in measured)
    return {"rows": table, "figure": png(fig_reliability(curves, colours)) if curves else None, "bins": N_BINS,
            "per_seed": over_seeds(measured),
            "images": "every seed's test images pooled" if several else "the test images of its one seed"}


def fig_reliability(curves: list[tuple[str, float | None, list[Any]]], colours: Palette) -> Figure:
    """Accuracy against mean confidence in each non-empty bin, a line per model; the diagonal is perfect
    calibration (below it: over-confident). Marker area grows with the bin's share of images."""
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0, 100], [0, 100], ls="--", color="#888", lw=1, label="perfectly calibrated")
    for model, ece, bins in curves:
        filled = [b for b in bins if b.count]
        total = sum(b.count for b in filled)
        x = [b.mean_confidence * 100 for b in filled]
        y = [b.accuracy * 100 for b in filled]
        label = f"{model} (ECE {ece:.3f})" if ece is not None else model
        ax.plot(x, y, color=colours.get(model, "#555"), lw=1.4, label=label, zorder=3)
        ax.scatter(x, y, s=[8 + 120 * b.count / total for b in filled], color=colours.get(model, "#555"), zorder=4,
                   edgecolors="white", linewidths=0.6)
    ax.set_xlim(0, 101)
    ax.set_ylim(0, 101)
    ax.set_xlabel("mean confidence in the bin (%)")
    ax.set_ylabel("accuracy in the bin (%)")
    ax.legend(frameon=False, loc="upper left", fontsize=8)
    return fig


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"
