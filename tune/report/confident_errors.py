"""The report's "Wrong, and sure of it" section: per classifier, the test images it gets wrong at a top probability
above 0.9 (jobs/engine/measure/confident_errors.py), and their share of all its errors. A model whose errors are
mostly confident cannot be made safer by asking a person to check its unsure answers."""

from __future__ import annotations

from typing import Any

import numpy as np

from jobs.engine.measure.confident_errors import CONFIDENCE, confident_errors
from tune.report.figures import over_seeds
from tune.report.sections import SectionInputs, report_section


@report_section("confident_errors", "confident_errors.html.j2")
def confidently_wrong(inputs: SectionInputs) -> dict[str, Any] | None:
    """A row per classifier that measured it (its result.json's `confident_errors`, mean over seeds; recomputed from
    predictions.npz for a sweep from before the measurement): the count, its share of the model's test errors and
    the test images; None when no model has it (the detector alone, or no predictions kept)."""
    rows, measured = [], []
    for row in inputs.rows:
        seeds = [p for p in (inputs.predictions.runs.get(row["model"]) or {}).values() if p.probabilities is not None]
        count = row.get("confident_errors")
        if count is None and seeds:
            count = float(np.mean([confident_errors(p.labels, p.predictions, p.probabilities)["confident_errors"]
                                   for p in seeds]))
        if count is None:
            continue
        errors = float(np.mean([(~p.correct).sum() for p in seeds])) if seeds else None
        rows.append({"model": row["model"], "count": f"{count:,.1f}".removesuffix(".0"),
                     "share": f"{count / errors:.0%}" if errors else "—",
                     "errors": f"{errors:,.1f}".removesuffix(".0") if errors is not None else "—",
                     "images": f"{len(seeds[0].labels):,}" if seeds else "—"})
        measured.append(row)
    if not rows:
        return None
    return {"rows": rows, "confidence": f"{CONFIDENCE:.0%}", "per_seed": over_seeds(measured)}
