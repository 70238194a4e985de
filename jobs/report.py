"""`python -m jobs.report FOLDER`: rebuild comparison.{csv,json,md} and report.html from a sweep's stored results.

FOLDER is a sweep's folder, or the --output folder of the sweeps (then its latest sweep).

Trains nothing, so a report can be regenerated (or restyled) long after the sweep ran.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from jobs.errors import UsageError, run_cli
from jobs.sweep_folder import find_sweep

REPORT_FILE = "report.html"


def write_report(output: Path) -> dict[str, Any]:
    """Write every comparison file and report.html under OUTPUT; returns their paths and the verdict in words.

    Raises UsageError when OUTPUT is not a sweep's output folder (no sweep.json, unreadable JSON).
    """
    from tune.aggregate import comparison_table, load_results, write_comparison
    from tune.report_html import findings, plain, render_report, what_this_means

    output = Path(output)
    results = load_results(output)
    table = comparison_table(results)
    files = {f"comparison_{ext}": path for ext, path in write_comparison(table, output).items()}
    html_path = output / REPORT_FILE
    html_path.write_text(render_report(results, table), encoding="utf-8")
    files["report_html"] = html_path
    found = findings(results, table)
    return {"files": files, "summary": plain(what_this_means(found)),
            "best_model": found.best["model"] if found.best else None, "table": table}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.report", description=__doc__)
    parser.add_argument("output", help="a sweep's folder (holds sweep.json), or OUTPUT for its latest sweep")
    args = parser.parse_args(argv)
    if not args.output.strip():
        raise UsageError("the results folder is an empty string")
    report = write_report(find_sweep(Path(args.output), "jobs.report"))
    for path in report["files"].values():
        print(f"wrote {path}")
    print(f"\n{report['summary']}")
    return 0


if __name__ == "__main__":
    run_cli(main)
