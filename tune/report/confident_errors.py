"""The report's "Wrong, and sure of it" section: per classifier, the test images it gets wrong at a top probability
above 0.9 (jobs/engine/measure/confident_errors.py), and their share of all its errors. A model whose errors are
mostly confident cannot be made safer by asking a person to check its unsure answers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jobs.engine.measure.confident_errors import CONFIDENCE, confident_errors
from tune.report.figures import over_seeds
from tune.report.sections import SectionInputs, report_section


@dataclass(frozen=True)
class ConfidentRow:
    model: str
    count: str
    share: str
    errors: str
    images: str


@dataclass(frozen=True)
class ConfidentErrors:
    """What confident_errors.html.j2 lays out: a row per classifier measured, the threshold, the seeds behind it."""

    rows: list[ConfidentRow]
    confidence: str
    per_seed: str


@report_section("confident_errors", "confident_errors.html.j2")
def confidently_wrong(inputs: SectionInputs) -> ConfidentErrors | None:
    """A row per classifier that measured it (its result.json's `confident_errors`, mean over seeds; recomputed from
    predictions.npz for a sweep from before the measurement): the count, its share of the model's test errors and
    the test images; None when no model has it (the detector alone, or no predictions kept)."""
    rows, measured = [], []
    for row in inputs.rows:
        seeds = [p for p in (inputs.predictions.runs.get(row.model) or {}).values() if p.probabilities is not None]
        count = row.mean("confident_errors")
        if count is None and seeds:
            count = float(np.mean([confident_errors(p.labels, p.predictions, p.probabilities)["confident_errors"]
                                   for p in seeds]))
        if count is None:
            continue
        errors = float(np.mean([(~p.correct).sum() for p in seeds])) if seeds else None
        rows.append(ConfidentRow(row.model, f"{count:,.1f}".removesuffix(".0"),
                                 f"{count / errors:.0%}" if errors else "—",
                                 f"{errors:,.1f}".removesuffix(".0") if errors is not None else "—",
                                 f"{len(seeds[0].labels):,}" if seeds else "—"))
        measured.append(row)
    if not rows:
        return None
    return ConfidentErrors(rows, f"{CONFIDENCE:.0%}", over_seeds(measured))
