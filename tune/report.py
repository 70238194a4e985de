"""Rebuild a sweep's comparison files and report.html from what its folder stores; trains nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jobs.engine.atomic import write_text_atomically
from tune.comparison import comparison_table, load_results, write_comparison
from tune.cost import Prices
from tune.report_html import findings, plain, render_report, what_this_means
from tune.significance import N_RESAMPLES
from tune.sweep_folder import REPORT_FILE


def write_report(output: Path, prices: Prices | None = None, n_resamples: int = N_RESAMPLES) -> dict[str, Any]:
    """Write every comparison file and report.html under OUTPUT; returns their paths and the verdict in words.

    PRICES (a report's --price) replace the ones the sweep recorded, for this report only (sweep.json is left as
    it is). N_RESAMPLES: bootstrap resamples behind each interval and chance of being best (tune/significance.py).
    Raises UsageError when OUTPUT is not a sweep's output folder (no sweep.json, unreadable JSON).
    """
    output = Path(output)
    results = load_results(output)
    if prices is not None:
        results.sweep.prices = prices.as_dict()
    table = comparison_table(results)
    files = {f"comparison_{ext}": path for ext, path in write_comparison(table, output).items()}
    # The findings (statistics over every pair and seed) are computed once, for the page and the summary.
    found = findings(results, table, n_resamples)
    html_path = output / REPORT_FILE
    write_text_atomically(html_path, render_report(results, table, found))
    files["report_html"] = html_path
    return {"files": files, "summary": plain(what_this_means(found)),
            "best_model": found.best["model"] if found.best else None, "table": table}
