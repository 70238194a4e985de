"""The table of the report's "What it costs" section (tune/report/cost.py): serving, compute, ONNX, time to 99% and
dollars per architecture, failed ones too (their search cost is real), and the notes that say what its marks mean."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from jobs.engine.finite import is_finite
from tune.analysis.cost import fmt_usd
from tune.analysis.cost_columns import FIRST_RETRAIN, TimedHistory
from tune.analysis.results import SweepResults
from tune.analysis.row import ComparisonRow
from tune.report.words import first_clause

NEAR_BEST_POINTS = 0.5  # "fastest to serve within 0.5 points of the best"
TARGET = 0.99  # the table's and the verdict's time-to-accuracy target (a detector: DETECTOR_TARGET of mAP@0.5)
DETECTOR_TARGET = 0.7
ONNX_CHARS = 48  # an ONNX reason's first clause up to this long is its table cell; the full one is a note under it
# The detector's cell: it returns box lists, not the logits the ONNX check compares.
DETECTOR_ONNX = "not exported: a detector (box lists, no logits)"
DETECTOR_ONNX_REASON = ("not exported: the ONNX check covers classifiers (logits [B, C]); a detector returns lists of "
                        "boxes, labels and scores")
DASH = "—"
HEADINGS = ("Latency p50 / p95 (ms)", "Through\u00adput (/s)", "GFLOPs", "Size (MB)", "ONNX agree · ORT p50",
            "Time to 99% (s)", "$ / retrain", "$ total")
Cell = tuple[str, str | None, str]  # (text, tooltip, css): a cell in words may wrap ("wrap"), a number may not


@dataclass(frozen=True)
class CostRow:
    model: str
    cells: list[Cell]
    css: str  # "best", "failed" or ""


@dataclass(frozen=True)
class CostTable:
    headings: tuple[str, ...]
    rows: list[CostRow]


def cost_table(results: SweepResults, rows: list[ComparisonRow]) -> CostTable:
    """One row per architecture (failed ones too: their search cost is real)."""
    out = []
    for i, row in enumerate(rows):
        onnx, why = _onnx_cell(results, row)
        time = _time_cell(row)
        cells: list[Cell] = [
            (_pair(row.mean("latency_ms_p50"), row.mean("latency_ms_p95")), None, ""),
            (_fixed(row.mean("throughput_per_s"), 0), None, ""),
            (sig(row.mean("gflops_per_image")), None, ""),
            (sig(row.mean("model_size_mb")), None, ""),
            (onnx, why, "wrap" if why else ""),
            (time, None, "wrap" if time.startswith("not") else ""),
            (_dollars(row.costs.retrain_cost_usd), None, ""),
            (_dollars(row.costs.cost_usd), None, ""),
        ]
        marks = " ‡" if row.detector else ""
        out.append(CostRow(row.model + marks, cells, "best" if i == 0 and row.ok else ("" if row.ok else "failed")))
    return CostTable(HEADINGS, out)


def _dollars(value: float | None) -> str:
    return fmt_usd(value) if value is not None and is_finite(value) else DASH


def _pair(p50: float | None, p95: float | None) -> str:
    if not is_finite(p50):
        return DASH
    return f"{sig(p50)} / {sig(p95)}"


def onnx_reason(results: SweepResults, row: ComparisonRow) -> str | None:
    """Why ROW's model has no ONNX check, from its first retrain; None when it has one or never retrained."""
    if is_finite(row.mean("onnx_agreement")):
        return None
    runs = results.finals.get(row.model) or []
    if not runs:
        return None
    reason = (runs[0].onnx or {}).get("reason") or (runs[0].final_evaluation_errors or {}).get("onnx")
    if not reason and row.detector:
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


def undeployable_reason(results: SweepResults, row: ComparisonRow) -> str | None:
    """Why ROW's model was exported and checked but is not deployable (its ONNX Runtime predictions disagree with
    PyTorch's, or too few images were checked: jobs/engine/measure/onnx_export.py), from the first retrain that says so;
    None when every retrain's file is deployable, or its record predates the verdict."""
    for run in results.finals.get(row.model) or []:
        record = run.onnx or {}
        if record.get("exported") and record.get("deployable") is False:
            return str(record.get("reason") or "not deployable")
    return None


def _onnx_cell(results: SweepResults, row: ComparisonRow) -> tuple[str, str | None]:
    undeployable = undeployable_reason(results, row)
    agreement = row.mean("onnx_agreement")
    if undeployable and agreement is not None and is_finite(agreement):
        return f"not deployable (agreement {agreement * 100:.2f}%)", undeployable
    if agreement is not None and is_finite(agreement):
        ort = row.mean("onnx_latency_ms_p50")
        return f"{agreement * 100:.2f}% · {sig(ort) + ' ms' if is_finite(ort) else DASH}", None
    reason = onnx_reason(results, row)
    if not reason:
        return DASH, None
    return onnx_phrase(reason, row.detector), reason


def _time_cell(row: ComparisonRow) -> str:
    """Seconds to the target (99% validation accuracy, or the detector's mAP@0.5 target); "not reached (> N s)" with
    N the seconds that history trained, so the reader sees how long it tried; "—" only where there is nothing to time
    (a model with no history: it did not train)."""
    timed = row.costs.timed
    mark = " †" if timed.source == FIRST_RETRAIN else ""
    value = row.costs.time_to(DETECTOR_TARGET if timed.detection else TARGET)
    if value is not None and is_finite(value):
        return f"{value:,.1f}{mark}"
    if not timed.history:
        return DASH if not row.ok else "not recorded"
    tried = trained_seconds(timed)
    # Non-breaking spaces keep "> N s" on one line when the cell wraps.
    return f"not reached (>\u00a0{tried:,.1f}\u00a0s){mark}" if tried is not None else f"not reached{mark}"


def trained_seconds(timed: TimedHistory) -> float | None:
    """How many training seconds TIMED's history covers: its clock at the last epoch, else the largest train_time_s
    or the sum of epoch_time_s it recorded; None when it recorded neither."""
    curve = timed.curve()
    if curve:
        return curve[-1][0]
    so_far = [float(t) for h in timed.history if is_finite(t := h.get("train_time_s"))]
    epochs = [float(t) for h in timed.history if is_finite(t := h.get("epoch_time_s"))]
    if so_far:
        return max(so_far)
    return sum(epochs) if epochs else None


def table_notes(results: SweepResults, rows: list[ComparisonRow]) -> list[str]:
    """What the table's marks mean, which history each time to 99% comes from, and why a model was not exported
    to ONNX, in full (its cell has a short phrase)."""
    trial = [r.model for r in rows if r.costs.timed.source and r.costs.timed.source != FIRST_RETRAIN]
    retrain = [r.model for r in rows if r.costs.timed.source == FIRST_RETRAIN]
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
    detectors = [r.model for r in rows if r.detector]
    if detectors:
        notes.append(f"‡ {', '.join(detectors)}: a detector, so latency, throughput and GFLOPs are per canvas and its "
                     f"time is to a validation mAP@0.5 of {DETECTOR_TARGET} (targets 0.5, 0.7, 0.9 are in "
                     "comparison.csv), not to 99% accuracy.")
    for row in rows:
        reason = onnx_reason(results, row)
        if reason:
            notes.append(f"Why {row.model} was not exported to ONNX: "
                         f"{reason.removeprefix('not exported: ').rstrip('.')}.")
        undeployable = undeployable_reason(results, row)
        if undeployable:
            notes.append(f"Why {row.model}'s ONNX file is not deployable (kept as model.not-deployable.onnx, no "
                         f"model.onnx): {undeployable.removeprefix('not deployable: ').rstrip('.')}.")
    return notes


def sig(value: float | None, digits: int = 3) -> str:
    """Three significant figures, thousands separated above 1,000: 0.00421, 1.86, 178, 12,300."""
    if value is None or not is_finite(value):
        return DASH
    if value == 0:
        return "0"
    if abs(value) >= 10 ** digits:
        return f"{value:,.0f}"
    return f"{value:.{max(0, digits - 1 - math.floor(math.log10(abs(value))))}f}"


def _fixed(value: float | None, digits: int) -> str:
    return f"{value:,.{digits}f}" if value is not None and is_finite(value) else DASH
