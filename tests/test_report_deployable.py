"""The report says what a final run's result.json says about deployment (issue 25, items 11 and 15): an ONNX file
that disagrees with PyTorch is "not deployable (agreement X%)" in the cost table with its reason in full below it,
never an agreement figure that reads as fine; a run whose captured CUDA step fell back to the eager one says so."""

from __future__ import annotations

import json

from tests.report_cache import reports_fixture  # noqa: F401 -- the `reports` fixture
from tune.analysis.comparison import compare
from tune.analysis.results import load_results
from tune.report.cost import cost_section
from tune.report.page import step_fallbacks

REASON = ("not deployable: agreement 86.70% on 10000 test images, below the 99.9% required (dynamo: "
          "GuardOnDataDependentSymNode: Could not guard on data-dependent expression; torchscript: agreement "
          "86.70% on 10000 test images, below the 99.9% required)")
FALLBACK = "capture failed: RuntimeError: operation not permitted when stream is capturing"


def test_an_undeployable_onnx_file_and_a_step_fallback_are_shown(reports, tmp_path):
    # The timed clear_winner sweep at one seed, as tests/test_report_cost.py uses it (one cached copy a session).
    folder = reports.copy(tmp_path / "out", "clear_winner", 1, slots=3, cpus=4.0)
    record_file = folder / "final" / "cnn" / "seed0" / "result.json"
    record = json.loads(record_file.read_text())
    record["onnx"] |= {"ok": False, "exported": True, "deployable": False, "agreement": 0.867, "reason": REASON,
                       "path": "model.not-deployable.onnx"}
    record |= {"onnx_agreement": 0.867, "step_fallback": FALLBACK}
    record_file.write_text(json.dumps(record))
    results = load_results(folder)
    cost = cost_section(compare(results))

    cells = {row.model: row.cells[4] for row in cost.table.rows}
    assert cells["cnn"] == ("not deployable (agreement 86.70%)", REASON, "wrap")
    assert cells["resnet18"][0] == "100.00% · " + cells["resnet18"][0].split(" · ")[1]  # a deployable one, as before
    notes = " ".join(cost.notes)
    assert ("Why cnn's ONNX file is not deployable (kept as model.not-deployable.onnx, no model.onnx): agreement "
            "86.70% on 10000 test images") in notes
    assert step_fallbacks(results) == [f"cnn (seed 0) trained with the eager step: the captured CUDA step's "
                                       f"{FALLBACK}."]
