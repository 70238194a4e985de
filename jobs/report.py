"""`python -m jobs.report FOLDER`: rebuild comparison.{csv,json,md} and report.html from a sweep's stored results.

FOLDER is a sweep's folder, or the --output folder of the sweeps (then its latest sweep).

Trains nothing, so a report can be regenerated (or restyled) long after the sweep ran.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jobs.engine.errors import UsageError, run_cli
from tune.report.compare import write_sweep_comparison
from tune.report.write import write_report
from tune.sweep.folder import find_sweep
from tune.sweep.prices import price_flag
from tune.track.flags import Tracking, add_flags


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.report", description=__doc__)
    parser.add_argument("output", nargs="?",
                        help="a sweep's folder (holds sweep.json), or OUTPUT for its latest sweep")
    parser.add_argument("--price", metavar="cpu_hour=USD,gpu_hour=USD",
                        help="US dollars per vCPU-hour and per GPU-hour for this report's costs, instead of what the "
                             "sweep recorded (default: the sweep's --price, else tune/sweep/prices.py DEFAULT_PRICES)")
    parser.add_argument("--compare", nargs=2, metavar=("SWEEP_A", "SWEEP_B"),
                        help="instead of a report, one page comparing two sweeps per architecture, written to "
                             "SWEEP_A/compare-<B>.html (tune/report/compare.py)")
    add_flags(parser)  # --mlflow logs the sweep afterwards (tune/track/), adding only the runs the tracker lacks
    args = parser.parse_args(argv)
    tracked = args.mlflow is not None or args.register is not None  # given here, not from the environment
    tracking = Tracking.take(vars(args))
    if args.compare is not None:
        if args.output is not None:
            raise UsageError("--compare takes the two sweeps itself: give no other folder")
        if tracked:
            raise UsageError("--compare logs nothing to a tracker: send each sweep with `jobs.report SWEEP --mlflow "
                             "URI`")
        a, b = (find_sweep(Path(folder), "jobs.report --compare") for folder in args.compare)
        print(f"wrote {write_sweep_comparison(a, b)}")
        return 0
    if args.output is None:
        raise UsageError("give a sweep's folder, or OUTPUT for its latest sweep (or --compare SWEEP_A SWEEP_B)")
    prices = price_flag(args.price)
    if not args.output.strip():
        raise UsageError("the results folder is an empty string")
    folder = find_sweep(Path(args.output), "jobs.report")
    tracker = tracking.check("the report")  # one that does not answer: one line, before any file is written
    report = write_report(folder, prices)
    for path in report.files.values():
        print(f"wrote {path}")
    print(f"\n{report.summary}")
    if tracker is not None:
        from tune.track.observer import log_finished_sweep

        return 0 if log_finished_sweep(tracker, folder, tracking.register) else 1
    return 0


if __name__ == "__main__":
    run_cli(main)
