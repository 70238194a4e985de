"""The report's "What it costs" section: serving, compute and training cost per architecture, its verdicts and its
figures; the markup is tune/report/templates/cost.html.j2.

Reads the comparison's rows (tune/analysis/comparison.py, with the cost columns of tune/analysis/cost_columns.py) and
the sweep's records; tune/analysis/cost.py does the arithmetic and words the verdicts. A failed model keeps its row in
the table (its search cost is real) but is left out of the figures; a value a model lacks shows as "—".

Prices: the report's --price, else the sweep's, else tune/analysis/cost.py's DEFAULT_PRICES: Google Cloud Compute
Engine's on-demand list prices in us-central1 as of 2024 (N1 vCPU $0.031611 an hour, cloud.google.com/compute/
vm-instance-pricing; NVIDIA V100 $2.48 a GPU-hour, cloud.google.com/compute/gpus-pricing). When this was written
Google's pages could not be read back with their figures; both agree with third-party copies of those pages (a cost
tool's default "GCP us-central1" vCPU price, GPU price tables listing "1 NVIDIA V100 GPU $2.48"). A dated reference, not
a quote: the report prints them with their source and says how to pass real ones.
"""

from __future__ import annotations

import math
import re
from typing import Any

import matplotlib
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from jobs.engine.finite import is_finite
from tune.analysis.comparison import records
from tune.analysis.cost import (
    DEFAULT_PRICES,
    Prices,
    cheapest_to_target,
    cost_pareto,
    fastest_within,
    fmt_usd,
    sweep_costs,
)
from tune.analysis.cost_columns import FIRST_RETRAIN, MAP_TIME_COLUMNS, TIME_COLUMNS, prices_of, timed_history
from tune.analysis.results import SweepResults
from tune.analysis.stats import pareto_front
from tune.report.figures import STYLE, colours, error_bars, png, short_number
from tune.report.words import first_clause, singular

NEAR_BEST_POINTS = 0.5  # "fastest to serve within 0.5 points of the best"
TARGET = 0.99  # the table's and the verdict's time-to-accuracy target (a detector: DETECTOR_TARGET of mAP@0.5)
DETECTOR_TARGET = 0.7
ONNX_CHARS = 48  # an ONNX reason's first clause up to this long is its table cell; the full one is a note under it
# The detector's cell: it returns box lists, not the logits the ONNX check compares.
DETECTOR_ONNX = "not exported: a detector (box lists, no logits)"
DETECTOR_ONNX_REASON = ("not exported: the ONNX check covers classifiers (logits [B, C]); a detector returns lists of "
                        "boxes, labels and scores")
# Values measured per image for a classifier and per canvas for the detector (jobs/engine/measure/final_evaluation.py).
PER_UNIT = ("latency_ms_p50", "latency_ms_p95", "throughput_per_s", "gflops_per_image", "onnx_latency_ms_p50")
DASH = "—"
DEFAULT_PAGES = ("cloud.google.com/compute/vm-instance-pricing (vCPU) and cloud.google.com/compute/gpus-pricing "
                 "(GPU)")
# (anchor, title, comparison column, axis label, what "better" means on the x axis, what the value is called, unit)
SCATTERS = (
    ("cost-latency", "Accuracy against serving latency", "latency_ms_p50",
     "serving latency at batch 1 (ms per image, median)", "faster", "a serving latency", " ms"),
    ("cost-gflops", "Accuracy against compute (GFLOPs)", "gflops_per_image", "forward GFLOPs per image",
     "cheaper to run", "a GFLOPs count", " GFLOPs per image"),
    ("cost-size", "Accuracy against file size (MB)", "model_size_mb", "weights (MB, 10⁶ bytes)", "smaller",
     "a model size", " MB"),
)


def cost_section(results: SweepResults, table: pd.DataFrame) -> dict[str, Any]:
    """What cost.html.j2 lays out: verdicts, how serving was measured, the table, totals, prices and figures."""
    rows = records(table)
    ok = [r for r in rows if r["status"] == "ok" and is_finite(r.get("test_accuracy"))]
    prices = prices_of(results.sweep)
    retrains = [run for model in results.models for run in results.finals.get(model, [])]
    spent = sweep_costs(results.trials, retrains, prices)
    histories = {r["model"]: timed_history(results, r["model"]) for r in rows}
    palette = colours(results.models)
    with matplotlib.rc_context(STYLE):
        scatters = [training_cost_figure(ok, palette)]
        scatters += [scatter_figure(ok, palette, *spec) for spec in SCATTERS]
        curve = time_to_accuracy_figure(ok, histories, palette)
    return {"verdicts": verdicts(ok), "serving": serving_text(results, ok), "table": cost_table(results, rows,
                                                                                                 histories),
            "notes": table_notes(results, rows, histories), "totals": totals_text(spent),
            "prices": prices_text(prices), "scatters": scatters if ok else [], "curve": curve if ok else None}


# ---- verdicts -------------------------------------------------------------------------------------------------

def verdicts(ok: list[dict[str, Any]]) -> list[str]:
    """The section's verdict lines, from tune/analysis/cost.py's helpers on the trained models' rows."""
    if not ok:
        return ["No architecture finished training, so there is no serving or training cost to compare."]
    out = []
    per_image = [r for r in ok if not _is_detector(r)]
    fast = fastest_within(per_image, NEAR_BEST_POINTS)
    if fast:
        out.append(_sentence(fast["text"]))
    else:
        out.append("No trained classifier has a serving latency, so there is no fastest to serve.")
    cheap = cheapest_to_target(ok, TIME_COLUMNS[TARGET], "cost_to_99_usd", "99%")
    if cheap:
        out.append(_sentence(cheap["text"]) + f" ({cheap['time_s']:,.1f} s of training).")
    else:
        out.append("No architecture reached 99% validation accuracy in the history used (see the table), so none "
                   "can be called the cheapest to train to 99%.")
    priced = [r for r in ok if is_finite(r.get("cost_usd")) and r["cost_usd"] > 0]
    if len(priced) > 1:
        front = cost_pareto(priced)
        out.append("On the Pareto front of accuracy against total training cost (search + retrains): "
                   f"{', '.join(front)}.")
    return out


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def serving_text(results: SweepResults, ok: list[dict[str, Any]]) -> str:
    """How serving was measured, from each trained model's first retrain's `serving` record."""
    setups: dict[str, list[str]] = {}
    per_canvas = []
    for row in ok:
        runs = results.finals.get(row["model"]) or []
        record = runs[0].serving if runs else {}
        if record:
            setups.setdefault(_setup(record), []).append(row["model"])
            per_canvas += [row["model"]] if record.get("unit") == "canvas" else []
    if not setups:
        return "No retrain recorded how its serving cost was measured."
    if len(setups) == 1:
        text = f"Serving was measured {next(iter(setups))}"
    else:
        text = "Serving was measured " + "; ".join(f"for {', '.join(models)} {setup}"
                                                   for setup, models in setups.items())
    return text + (f"; {', '.join(per_canvas)} per canvas, the others per image." if per_canvas else ".")


def _setup(s: dict[str, Any]) -> str:
    device = singular(str(s.get("device_name") or s.get("device") or "an unrecorded device"))
    threads = s.get("threads")
    threads_text = f" with {threads} thread{'s' if threads != 1 else ''}" if threads else ""
    text = (f"on {device}{threads_text}, {s.get('precision', 'fp32')}: latency at "
            f"batch {s.get('latency_batch', 1)} over {s.get('latency_calls', '?')} calls after "
            f"{s.get('latency_warmup', '?')} warm-up calls (median and 95th percentile)")
    if s.get("throughput_batch"):
        text += (f", throughput at batch {s['throughput_batch']} over {s.get('throughput_calls', '?')} calls after "
                 f"{s.get('throughput_warmup', '?')} warm-up")
    return text


# ---- the table ------------------------------------------------------------------------------------------------

HEADINGS = ("Latency p50 / p95 (ms)", "Through\u00adput (/s)", "GFLOPs", "Size (MB)", "ONNX agree · ORT p50",
            "Time to 99% (s)", "$ / retrain", "$ total")


def cost_table(results: SweepResults, rows: list[dict[str, Any]], histories: dict[str, Any]) -> dict[str, Any]:
    """One row per architecture (failed ones too: their search cost is real); each cell is (text, tooltip, css): a
    cell in words may wrap ("wrap"), a number may not."""
    out = []
    for i, row in enumerate(rows):
        ok = row["status"] == "ok"
        onnx, why = _onnx_cell(results, row)
        time = _time_cell(row, histories[row["model"]])
        cells = [
            (_pair(row.get("latency_ms_p50"), row.get("latency_ms_p95")), None, ""),
            (_fixed(row.get("throughput_per_s"), 0), None, ""),
            (_sig(row.get("gflops_per_image")), None, ""),
            (_sig(row.get("model_size_mb")), None, ""),
            (onnx, why, "wrap" if why else ""),
            (time, None, "wrap" if time.startswith("not") else ""),
            (fmt_usd(row["retrain_cost_usd"]) if is_finite(row.get("retrain_cost_usd")) else DASH, None, ""),
            (fmt_usd(row["cost_usd"]) if is_finite(row.get("cost_usd")) else DASH, None, ""),
        ]
        marks = " ‡" if _is_detector(row) else ""
        out.append({"model": row["model"] + marks, "cells": cells,
                    "css": "best" if i == 0 and ok else ("" if ok else "failed")})
    return {"headings": HEADINGS, "rows": out}


def _pair(p50: Any, p95: Any) -> str:
    if not is_finite(p50):
        return DASH
    return f"{_sig(p50)} / {_sig(p95)}"


def onnx_reason(results: SweepResults, row: dict[str, Any]) -> str | None:
    """Why ROW's model has no ONNX check, from its first retrain; None when it has one or never retrained."""
    if is_finite(row.get("onnx_agreement")):
        return None
    runs = results.finals.get(row["model"]) or []
    if not runs:
        return None
    reason = (runs[0].onnx or {}).get("reason") or (runs[0].final_evaluation_errors or {}).get("onnx")
    if not reason and _is_detector(row):
        reason = DETECTOR_ONNX_REASON
    return str(reason) if reason else None


def onnx_phrase(reason: str, detector: bool) -> str:
    """A short, complete phrase for the table cell, never a cut one: the detector's kind, the error's type, the
    reason's first clause when it is short, else a pointer to the note that says it in full."""
    if detector and "classifiers" in reason:
        return DETECTOR_ONNX
    error = re.match(r"\s*([A-Za-z_.]*(?:Error|Exception))\b", reason)
    if error:
        return f"export failed: {error.group(1)}"
    clause = first_clause(reason)
    return clause if len(clause) <= ONNX_CHARS else "not exported: see the note below"


def undeployable_reason(results: SweepResults, row: dict[str, Any]) -> str | None:
    """Why ROW's model was exported and checked but is not deployable (its ONNX Runtime predictions disagree with
    PyTorch's, or too few images were checked: jobs/engine/measure/onnx_export.py), from the first retrain that says so;
    None when every retrain's file is deployable, or its record predates the verdict."""
    for run in results.finals.get(row["model"]) or []:
        record = run.onnx or {}
        if record.get("exported") and record.get("deployable") is False:
            return str(record.get("reason") or "not deployable")
    return None


def _onnx_cell(results: SweepResults, row: dict[str, Any]) -> tuple[str, str | None]:
    undeployable = undeployable_reason(results, row)
    if undeployable and is_finite(row.get("onnx_agreement")):
        return f"not deployable (agreement {row['onnx_agreement'] * 100:.2f}%)", undeployable
    if is_finite(row.get("onnx_agreement")):
        ort = row.get("onnx_latency_ms_p50")
        return f"{row['onnx_agreement'] * 100:.2f}% · {_sig(ort) + ' ms' if is_finite(ort) else DASH}", None
    reason = onnx_reason(results, row)
    if not reason:
        return DASH, None
    return onnx_phrase(reason, _is_detector(row)), reason


def _time_value(row: dict[str, Any], timed: Any) -> Any:
    """The row's time to the table's target: 99% validation accuracy, or the detector's mAP@0.5 target."""
    return row.get(MAP_TIME_COLUMNS[DETECTOR_TARGET] if timed.detection else TIME_COLUMNS[TARGET])


def _time_cell(row: dict[str, Any], timed: Any) -> str:
    """Seconds to the target; "not reached (> N s)" with N the seconds that history trained, so the reader sees how
    long it tried; "—" only where there is nothing to time (a model with no history: it did not train)."""
    mark = " †" if timed.source == FIRST_RETRAIN else ""
    value = _time_value(row, timed)
    if is_finite(value):
        return f"{value:,.1f}{mark}"
    if not timed.history:
        return DASH if row["status"] != "ok" else "not recorded"
    tried = trained_seconds(timed)
    # Non-breaking spaces keep "> N s" on one line when the cell wraps.
    return f"not reached (>\u00a0{tried:,.1f}\u00a0s){mark}" if tried is not None else f"not reached{mark}"


def trained_seconds(timed: Any) -> float | None:
    """How many training seconds TIMED's history covers: its clock at the last epoch, else the largest train_time_s
    or the sum of epoch_time_s it recorded; None when it recorded neither."""
    curve = timed.curve()
    if curve:
        return curve[-1][0]
    so_far = [h["train_time_s"] for h in timed.history if is_finite(h.get("train_time_s"))]
    epochs = [h["epoch_time_s"] for h in timed.history if is_finite(h.get("epoch_time_s"))]
    if so_far:
        return float(max(so_far))
    return float(sum(epochs)) if epochs else None


def table_notes(results: SweepResults, rows: list[dict[str, Any]], histories: dict[str, Any]) -> list[str]:
    """What the table's marks mean, which history each time to 99% comes from, and why a model was not exported
    to ONNX, in full (its cell has a short phrase)."""
    trial = [m for m, h in histories.items() if h.source and h.source != FIRST_RETRAIN]
    retrain = [m for m, h in histories.items() if h.source == FIRST_RETRAIN]
    notes = ["Latency and throughput: per image at batch 1 and at a large batch on the retrain's own device; ONNX: "
             "share of test images where ONNX Runtime's prediction equals PyTorch's, and ONNX Runtime's median "
             "latency at batch 1 on the CPU (beside PyTorch's p50), or why the model was not exported. $ / retrain: "
             "mean over seeds; $ total: the search and every retrain of that architecture."]
    times = ("Time to 99%: training seconds until the validation accuracy first reached 99% (an upper bound, to "
             "one epoch), “not reached (> t s)” when it never did in its t seconds of training")
    if trial:
        times += f"; from the best search trial's history (the chosen configuration, on held-out validation data) " \
                 f"for {', '.join(trial)}"
    if retrain:
        times += (f"; † from the first retrain's history for {', '.join(retrain)}: no search trial kept one, and a "
                  "retrain trains on train+validation, so its validation accuracy is optimistic")
    notes.append(times + ".")
    detectors = [r["model"] for r in rows if _is_detector(r)]
    if detectors:
        notes.append(f"‡ {', '.join(detectors)}: a detector, so latency, throughput and GFLOPs are per canvas and its "
                     f"time is to a validation mAP@0.5 of {DETECTOR_TARGET} (targets 0.5, 0.7, 0.9 are in "
                     "comparison.csv), not to 99% accuracy.")
    for row in rows:
        reason = onnx_reason(results, row)
        if reason:
            notes.append(f"Why {row['model']} was not exported to ONNX: "
                         f"{reason.removeprefix('not exported: ').rstrip('.')}.")
        undeployable = undeployable_reason(results, row)
        if undeployable:
            notes.append(f"Why {row['model']}'s ONNX file is not deployable (kept as model.not-deployable.onnx, no "
                         f"model.onnx): {undeployable.removeprefix('not deployable: ').rstrip('.')}.")
    return notes


def totals_text(spent: dict[str, Any]) -> str:
    """The whole sweep: resource-seconds held and what they cost."""
    if not spent["cpu_s"] and not spent["gpu_s"]:
        return ("No search trial or retrain recorded when it started and ended, so the sweep's resource-seconds and "
                "cost are unknown.")
    search = sum(m["search_usd"] for m in spent["by_model"].values())
    retrain = sum(m["retrain_usd"] for m in spent["by_model"].values())
    text = (f"The whole sweep held {spent['cpu_s']:,.0f} CPU-seconds and {spent['gpu_s']:,.0f} GPU-seconds: "
            f"{fmt_usd(spent['total_usd'])} at the prices below (search {fmt_usd(search)}, retrains "
            f"{fmt_usd(retrain)}). A run holds its share of CPUs and GPUs from its start to its end, start-up and "
            "evaluation included, as a cloud bill would charge; memory, disks and network are not priced.")
    if spent["untimed"]:
        text += (f" {spent['untimed']} record{'s' if spent['untimed'] > 1 else ''} without a start or end time "
                 "count as 0.")
    return text


def prices_text(prices: Prices) -> str:
    text = (f"Prices: ${prices.cpu_hour:g} per vCPU-hour and ${prices.gpu_hour:g} per GPU-hour (a fractional GPU "
            f"pays its fraction). Source: {prices.source}.")
    if prices == DEFAULT_PRICES:
        text += (f" These defaults are the list prices on {DEFAULT_PAGES}, read in 2024 and not re-checked since; "
                 "prices change and differ by provider, region and commitment. Pass your own with "
                 "--price cpu_hour=…,gpu_hour=… to jobs.sweep (recorded in sweep.json) or to jobs.report (this "
                 "report only).")
    return text


# ---- figures --------------------------------------------------------------------------------------------------

def training_cost_figure(ok: list[dict[str, Any]], palette: dict[str, Any]) -> dict[str, Any]:
    """Accuracy against the dollars of search + retrains; resource-seconds when there are no dollars (prices 0)."""
    anchor, title = "cost-training", "Accuracy against training cost"
    if any(is_finite(r.get("cost_usd")) and r["cost_usd"] > 0 for r in ok) or not any(r.get("cpu_s") for r in ok):
        return scatter_figure(ok, palette, anchor, title, "cost_usd",
                              "training cost: search + retrains (US dollars)", "cheaper", "a training cost", " $")
    resource = "gpu_s" if any(is_finite(r.get("gpu_s")) and r["gpu_s"] > 0 for r in ok) else "cpu_s"
    label = "GPU" if resource == "gpu_s" else "CPU"
    return scatter_figure(ok, palette, anchor, title, resource, f"{label}-seconds held: search + retrains",
                          "cheaper", f"{label}-seconds held", f" {label}-seconds")


def scatter_figure(ok: list[dict[str, Any]], palette: dict[str, Any], anchor: str, title: str, key: str,
                   xlabel: str, better: str, called: str, unit: str = "") -> dict[str, Any]:
    """Test accuracy against KEY, one point per trained model, the Pareto front (more accurate and lower KEY)
    outlined and joined; a note instead of a chart when fewer than two models have a positive KEY."""
    points = [r for r in ok if is_finite(r.get(key)) and r[key] > 0]
    figure = {"anchor": anchor, "title": title, "png": None, "note": "", "caption": "",
              "models": [r["model"] for r in points], "labels": [point_label(r, key) for r in points],
              "alt": f"Scatter of mean test accuracy against {xlabel}, one point per model, Pareto front outlined"}
    if len(points) < 2:
        if points:
            only = points[0]
            value = fmt_usd(only[key]) if unit == " $" else _sig(only[key]) + unit
            figure["note"] = (f"Only {only['model']} has {called} ({value}): a trade-off needs two models, so "
                              "there is no chart.")
        else:
            figure["note"] = f"No trained model has {called}, so there is no chart."
        return figure
    front = pareto_front({r["model"]: r["test_accuracy"] for r in points}, {r["model"]: r[key] for r in points})
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for r in points:
        on_front = r["model"] in front
        ax.errorbar(r[key], r["test_accuracy"] * 100, yerr=(r.get("test_accuracy_std") or 0) * 100, fmt="o",
                    ms=9 if on_front else 7, color=palette.get(r["model"], "grey"),
                    mec="black" if on_front else "white", mew=1.5, capsize=3, zorder=3)
        ax.annotate(point_label(r, key), (r[key], r["test_accuracy"] * 100), xytext=(7, 5), textcoords="offset points",
                    fontsize=9)
    if len(front) > 1:
        xs, ys = zip(*sorted((r[key], r["test_accuracy"] * 100) for r in points if r["model"] in front), strict=True)
        ax.step(xs, ys, where="post", ls="--", color="#444", lw=1.2, label="Pareto front", zorder=2)
        ax.legend(loc="lower right", frameon=False)
    values = [r[key] for r in points]
    if max(values) / min(values) >= 20:  # a wide range reads on a log axis; a narrow one on a linear one
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(short_number))
        ax.xaxis.set_minor_formatter(NullFormatter())
        xlabel += ", log scale"
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    ax.margins(x=0.15, y=0.15)
    figure["png"] = png(fig)
    per_canvas = [r["model"] for r in points if point_label(r, key) != r["model"]]
    figure["caption"] = (f"Outlined and joined: the Pareto front, where no other model is both more accurate and "
                         f"{better}: {', '.join(front)}. "
                         + (f"{', '.join(per_canvas)}: per canvas, the others per image. " if per_canvas else "")
                         + error_bars(points))
    return figure


def point_label(row: dict[str, Any], key: str) -> str:
    """A scatter point's label: the model, and "(per canvas)" for the detector where KEY is measured per canvas, as
    the table's ‡ says."""
    return row["model"] + (" (per canvas)" if key in PER_UNIT and _is_detector(row) else "")


def time_to_accuracy_figure(ok: list[dict[str, Any]], histories: dict[str, Any],
                            palette: dict[str, Any]) -> dict[str, Any]:
    """Validation accuracy (a detector: mAP@0.5) against cumulative training seconds, one line per architecture,
    from the history the time-to-target columns use; 99% drawn as a dotted line."""
    figure = {"anchor": "time-to-accuracy", "title": "Time to accuracy", "png": None, "note": "", "caption": "",
              "alt": "Line chart of validation accuracy against cumulative training seconds, one line per model"}
    curves = [(r["model"], histories[r["model"]], histories[r["model"]].curve()) for r in ok]
    curves = [(model, timed, curve) for model, timed, curve in curves if curve]
    figure["models"] = [model for model, _, _ in curves]
    if not curves:
        figure["note"] = "No trained model kept a per-epoch history with its epoch times, so there is no chart."
        return figure
    fig = Figure(figsize=(7.2, 3.9), layout="constrained")
    ax = fig.add_subplot()
    for model, timed, curve in curves:
        xs, ys = zip(*curve, strict=True)
        label = model + (" (mAP@.5)" if timed.detection else "") + (" †" if timed.source == FIRST_RETRAIN else "")
        ax.plot(xs, [y * 100 for y in ys], marker="o", ms=5, color=palette.get(model, "grey"), label=label)
    ax.axhline(TARGET * 100, ls=":", color="#444", lw=1, zorder=1)
    ax.annotate("99%", (1, TARGET * 100), xycoords=("axes fraction", "data"), xytext=(-4, 3),
                textcoords="offset points", ha="right", fontsize=8, color="#444")
    seconds = [x for _, _, curve in curves for x, _ in curve]
    if max(seconds) / min(seconds) >= 20:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(short_number))
    ax.set_xlabel("cumulative training seconds" + (" (log scale)" if ax.get_xscale() == "log" else ""))
    detector = any(timed.detection for _, timed, _ in curves)
    ax.set_ylabel("validation accuracy (%)" + (" or mAP@.5" if detector else ""))
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    figure["png"] = png(fig)
    single = all(len(curve) == 1 for _, _, curve in curves)
    retrained = any(timed.source == FIRST_RETRAIN for _, timed, _ in curves)
    figure["caption"] = (
        ("Each architecture's history has one epoch, so each is one point: its validation accuracy after that "
         "epoch's training seconds. " if single else "") +
        "From the history of each architecture's best search trial (the chosen configuration, on held-out "
        "validation data)" +
        ("; † marks the first retrain's, used where no trial kept one (optimistic: it trains on train+validation)"
         if retrained else "") +
        ". Seconds are training time only, summed epoch by epoch; the dotted line is 99%.")
    return figure


# ---- formatting -----------------------------------------------------------------------------------------------

def _is_detector(row: dict[str, Any]) -> bool:
    return is_finite(row.get("test_map_50"))


def _sig(value: Any, digits: int = 3) -> str:
    """Three significant figures, thousands separated above 1,000: 0.00421, 1.86, 178, 12,300."""
    if not is_finite(value):
        return DASH
    if value == 0:
        return "0"
    if abs(value) >= 10 ** digits:
        return f"{value:,.0f}"
    return f"{value:.{max(0, digits - 1 - math.floor(math.log10(abs(value))))}f}"


def _fixed(value: Any, digits: int) -> str:
    return f"{value:,.{digits}f}" if is_finite(value) else DASH
