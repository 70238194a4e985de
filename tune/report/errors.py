"""Errors in pictures, from the images each final run kept in predictions.npz: the test digits each classifier
gets most confidently wrong, the digits on which the top two disagree (both ways), and the detector's canvases
with its true and predicted boxes."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from tune.report.figures import digit_mosaic, png
from tune.report.predictions import Predictions, SweepPredictions
from tune.report.statistics import Statistics

SHOWN = 20  # digits per grid
COLUMNS = 10
TRUE_BOX, PREDICTED_BOX = "#1d7a46", "#d9480f"  # green: the truth; orange: the detector's answer


def error_grids(order: list[str], predictions: SweepPredictions) -> list[dict[str, Any]]:
    """Per classifier (first seed), its SHOWN most confidently wrong test digits: true → predicted, confidence."""
    out = []
    for model in order:
        first = predictions.seed0(model)
        if first is None or first[1].probabilities is None or not len(first[1].error_indices):
            continue
        seed, p = first
        index = p.error_indices[:SHOWN]
        confidence = p.probabilities[index, p.predictions[index]]
        captions = [f"{p.labels[i]}→{p.predictions[i]} {c:.0%}" for i, c in zip(index, confidence, strict=True)]
        wrong = int((~p.correct).sum())
        out.append({"model": model, "png": png(digit_mosaic(p.error_images[:SHOWN], captions, COLUMNS)),
                    "caption": f"{model}, seed {seed}: the {len(index)} most confident of its {wrong:,} errors on "
                               f"{len(p.labels):,} test images. Under each digit: true → predicted, and the "
                               "probability it gave its wrong answer.",
                    "alt": f"Grid of the {len(index)} test digits {model} gets most confidently wrong, each captioned "
                           "with its true label, the predicted label and the predicted probability"})
    return out


def disagreements(stats: Statistics | None, predictions: SweepPredictions) -> dict[str, Any]:
    """The digits on which the top two disagree, both ways, at their first common seed: each way's images are in
    the wrong model's error_images."""
    top = stats.top if stats else None
    if top is None:
        return {"note": "There is no pair of top models tested on the same images to compare image by image.",
                "ways": []}
    seed = top.test.seeds[0]
    runs = {m: predictions.runs[m][seed] for m in (top.a, top.b)}
    if not any(len(run.error_images) for run in runs.values()):
        return {"note": f"Neither {top.a} nor {top.b} kept its wrong test images (predictions.npz), so their "
                        "disagreements cannot be shown.", "ways": []}
    ways = []
    for right, wrong in ((top.a, top.b), (top.b, top.a)):
        ways.append(_way(right, wrong, runs[right], runs[wrong], seed))
    return {"note": "", "ways": ways, "a": top.a, "b": top.b, "seed": seed}


def right_where_wrong(good: Predictions, bad: Predictions) -> tuple[np.ndarray, np.ndarray]:
    """The test indices and images, among those BAD kept (its errors, most confident first), that GOOD gets right."""
    mask = good.correct[bad.error_indices] if len(bad.error_indices) else np.zeros(0, dtype=bool)
    return bad.error_indices[mask], bad.error_images[mask]


def _way(right: str, wrong: str, good: Predictions, bad: Predictions, seed: int) -> dict[str, Any]:
    """The images RIGHT gets right and WRONG gets wrong: counted on every test image, drawn from those WRONG kept
    (its most confident errors, up to final_evaluation.MAX_ERROR_IMAGES)."""
    total = int((good.correct & ~bad.correct).sum())
    title = f"{right} right, {wrong} wrong: {total:,} image{'s' if total != 1 else ''} at seed {seed}"
    index, images = right_where_wrong(good, bad)
    kept = len(index)
    index, images = index[:SHOWN], images[:SHOWN]
    if not len(index):
        why = (f"{right} is never right where {wrong} is wrong" if not total else
               f"{wrong} kept none of these images in its predictions.npz")
        return {"title": title, "png": None, "caption": f"Seed {seed}: {why}."}
    order = "most confident " if bad.probabilities is not None else ""
    caption = (f"Seed {seed}: the {len(index)} {order}of {wrong}'s errors on which {right} is right"
               + (f" ({wrong} kept {kept:,} of the {total:,} images)" if kept < total else "")
               + f". Under each digit: true → {wrong}'s answer.")
    captions = [f"{bad.labels[i]}→{bad.predictions[i]}" for i in index]
    return {"title": title, "png": png(digit_mosaic(images, captions, COLUMNS)), "caption": caption,
            "alt": f"Grid of test digits {right} classifies correctly and {wrong} does not, captioned with the true "
                   f"label and {wrong}'s answer"}


def detection_canvases(order: list[str], predictions: SweepPredictions) -> list[dict[str, Any]]:
    """Per detector (first seed), its stored test canvases: true boxes green, predicted boxes orange, dashed,
    with the predicted digit and score."""
    out = []
    for model in order:
        first = predictions.seed0(model)
        if first is None or not first[1].detection or not len(first[1].detection.get("canvases", ())):
            continue
        seed, p = first
        out.append({"model": model, "png": png(_fig_canvases(p.detection)),
                    "caption": f"{model}, seed {seed}: {len(p.detection['canvases'])} test canvases. Green: the true "
                               "boxes and digits; orange, dashed: the detector's boxes with their digit and score "
                               "(scores of 0.5 and above are kept).",
                    "alt": f"Row of {model}'s test canvases with true boxes in green and predicted boxes in orange"})
    return out


def _split(flat: np.ndarray, counts: np.ndarray) -> list[np.ndarray]:
    return np.split(flat, np.cumsum(counts)[:-1]) if len(counts) else []


def _fig_canvases(d: dict[str, np.ndarray]) -> Figure:
    canvases = d["canvases"]
    n, side = len(canvases), canvases.shape[1]
    gap = 6
    strip = np.zeros((side, n * (side + gap) - gap), dtype=np.uint8)
    for i, canvas in enumerate(canvases):
        strip[:, i * (side + gap): i * (side + gap) + side] = canvas
    fig = Figure(figsize=(min(9.0, 1.5 * n), 1.5 * 1.25 + 0.35), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(strip, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    true = zip(_split(d["true_boxes"], d["true_counts"]), _split(d["true_labels"], d["true_counts"]), strict=True)
    pred = zip(_split(d["pred_boxes"], d["pred_counts"]), _split(d["pred_labels"], d["pred_counts"]),
               _split(d["pred_scores"], d["pred_counts"]), strict=True)
    for i, (boxes, labels) in enumerate(true):
        for (x1, y1, x2, y2), label in zip(boxes, labels, strict=True):
            x = x1 + i * (side + gap)
            ax.add_patch(Rectangle((x, y1), x2 - x1, y2 - y1, fill=False, ec=TRUE_BOX, lw=1.2))
            ax.text(x + 1, y1 - 1, str(label), color=TRUE_BOX, fontsize=6.5, va="bottom", in_layout=False)
    for i, (boxes, labels, scores) in enumerate(pred):
        for (x1, y1, x2, y2), label, score in zip(boxes, labels, scores, strict=True):
            x = x1 + i * (side + gap)
            ax.add_patch(Rectangle((x, y1), x2 - x1, y2 - y1, fill=False, ec=PREDICTED_BOX, lw=1.2, ls="--"))
            ax.text(x + x2 - x1, y2 + 1, f"{label} {float(score):.2f}", color=PREDICTED_BOX, fontsize=6,
                    ha="right", va="top", in_layout=False)
    ax.set_xlim(-0.5, strip.shape[1] - 0.5)
    ax.set_ylim(side - 0.5 + 6, -6)
    handles = [Line2D([], [], color=TRUE_BOX, lw=1.2, label="true box, digit"),
               Line2D([], [], color=PREDICTED_BOX, lw=1.2, ls="--", label="predicted box, digit and score")]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False, fontsize=7.5)
    return fig
