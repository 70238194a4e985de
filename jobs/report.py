"""`python -m jobs.report FOLDER`: rebuild comparison.{csv,json,md} and report.html from a sweep's stored results.

FOLDER is a sweep's folder, or the --output folder of the sweeps (then its latest sweep).

Trains nothing, so a report can be regenerated (or restyled) long after the sweep ran.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jobs.engine.errors import UsageError, run_cli
from tune.analysis.cost_columns import price_flag
from tune.report.write import write_report
from tune.sweep.folder import find_sweep


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.report", description=__doc__)
    parser.add_argument("output", help="a sweep's folder (holds sweep.json), or OUTPUT for its latest sweep")
    parser.add_argument("--price", metavar="cpu_hour=USD,gpu_hour=USD",
                        help="US dollars per vCPU-hour and per GPU-hour for this report's costs, instead of what the "
                             "sweep recorded (default: the sweep's --price, else tune/analysis/cost.py DEFAULT_PRICES)")
    args = parser.parse_args(argv)
    prices = price_flag(args.price)
    if not args.output.strip():
        raise UsageError("the results folder is an empty string")
    report = write_report(find_sweep(Path(args.output), "jobs.report"), prices)
    for path in report["files"].values():
        print(f"wrote {path}")
    print(f"\n{report['summary']}")
    return 0


if __name__ == "__main__":
    run_cli(main)
