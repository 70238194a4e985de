"""Rebuild a sweep's comparison files and report.html from what its folder stores; trains nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from jobs.engine.atomic import write_text_atomically
from jobs.engine.train.progress import say
from tune.analysis.comparison import compare, write_comparison
from tune.analysis.results import load_results
from tune.analysis.significance import N_RESAMPLES
from tune.report.findings import findings, plain, what_this_means
from tune.report.page import render_report
from tune.sweep.folder import LATEST, REPORT_FILE
from tune.sweep.full_disk import stops_on_a_full_disk
from tune.sweep.prices import Prices
from tune.sweep.record import Sweep


@dataclass(frozen=True)
class WrittenReport:
    """What `write_report` wrote (comparison_csv, comparison_json, comparison_md, report_html: their paths), the
    verdict in words, the most accurate model (None when none trained) and the comparison as comparison.csv has it."""

    files: dict[str, Path]
    summary: str
    best_model: str | None
    table: pd.DataFrame


def write_report(output: Path, prices: Prices | None = None, n_resamples: int = N_RESAMPLES) -> WrittenReport:
    """Write every comparison file and report.html under OUTPUT.

    PRICES (a report's --price) replace the ones the sweep recorded, for this report only (sweep.json is left as
    it is). N_RESAMPLES: bootstrap resamples behind each interval and chance of being best
    (tune/analysis/significance.py).
    Raises UsageError when OUTPUT is not a sweep's output folder (no sweep.json, unreadable JSON).
    """
    output = Path(output)
    comparison = compare(load_results(output, prices))
    files = {f"comparison_{ext}": path for ext, path in write_comparison(comparison, output).items()}
    # The findings (statistics over every pair and seed) are computed once, for the page and the summary.
    found = findings(comparison, n_resamples)
    html_path = output / REPORT_FILE
    write_text_atomically(html_path, render_report(found))
    files["report_html"] = html_path
    return WrittenReport(files, plain(what_this_means(found)), found.best.model if found.best else None,
                         comparison.frame())


def report_finished_sweep(sweep: Sweep) -> None:
    """After a sweep's last retrain: its comparison files and report.html, and the summary printed with where the
    page is, how long the sweep took and how busy it kept the cluster. Raises DiskFull, one line, when the disk
    fills while they are written."""
    with stops_on_a_full_disk(sweep):
        report = write_report(Path(sweep.output))
    busy = "" if sweep.cluster_busy is None else f", cluster busy {sweep.cluster_busy:.0%}"
    say(f"\n{report.summary}\n\nreport: {report.files['report_html']} (sweep took "
        f"{sweep.wall_time_s / 60:.1f} min{busy}; {LATEST}/ beside its folder points to the newest sweep)")
