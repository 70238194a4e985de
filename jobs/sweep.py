"""`python -m jobs.sweep`: sweep every architecture with Ray Tune over Ray Train, retrain the best, compare.

For each architecture: a Tune search (ASHA on validation accuracy), then its best configuration retrained on
train+validation with K seeds and evaluated on the 10,000 test images, then the comparison report. Each sweep
writes only into its own folder, OUTPUT/<name>/ (OUTPUT/latest points to the newest), and records its state
after every step, so `--resume` continues a killed sweep without redoing finished work.
"""

from __future__ import annotations

import os

from jobs.engine.errors import ArgumentParser, UsageError, run_cli
from jobs.engine.run.loopback import prefer_loopback
from jobs.engine.run.storage import check_storage
from tune.sweep.checks import configs_for, read_space_file, validate
from tune.sweep.folder import check_name, check_writable
from tune.sweep.plan import check_plan_unchanged, effective_plan, plan_sweep, resume_sweep, resumes, start_in_own_folder
from tune.sweep.prices import price_flag
from tune.sweep.request import SweepRequest
from tune.track.flags import Tracking, add_flags


def parse_args(argv: list[str] | None) -> SweepRequest:
    return parse(argv)[0]


def parse(argv: list[str] | None) -> tuple[SweepRequest, Tracking]:
    """The sweep's flags, and apart from them the tracker's (--mlflow, --register), which define no sweep."""
    # Flags that define a sweep default to None, so that --resume can tell a flag given from a default.
    parser = ArgumentParser(prog="python -m jobs.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", help="smoke | quick | full (default: quick)")
    parser.add_argument("--models", help="comma-separated (default: all)")
    parser.add_argument("--samples", type=int, help="trials per architecture (default: the preset's)")
    parser.add_argument("--seeds", type=int, help="seeds of the final retrain (default: 1, or 3 on full)")
    parser.add_argument("--search", help="random | grid | optuna (default: random)")
    parser.add_argument("--search-seed", type=int,
                        help="seed of the search's sampling: the same seed draws the same trials (default: 0)")
    parser.add_argument("--output", default="results",
                        help="each sweep gets its own folder OUTPUT/<name>/; OUTPUT/latest is the newest")
    parser.add_argument("--name", help="the sweep's folder name (default: sweep-PRESET-DATE-TIME)")
    parser.add_argument("--storage", help="where the search trials' results and checkpoints go: a folder, or a URI "
                                          "such as s3://BUCKET/PREFIX, its endpoint and keys in AWS_ENDPOINT_URL, "
                                          "AWS_ACCESS_KEY_ID, ... (default: the sweep's folder/tune); the retrains, "
                                          "records and report stay in the sweep's folder")
    parser.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--resume", nargs="?", const="", metavar="SWEEP_FOLDER",
                        help="continue a sweep whose driver died: the folder given, else OUTPUT/latest")
    parser.add_argument("--resume-or-start", action="store_true",
                        help="with --name: continue the sweep OUTPUT/NAME if it exists (its flags checked as --resume "
                             "checks them), else start it; for a job a cluster may run again (a RayJob's retry)")
    parser.add_argument("--set", dest="overrides", action="append", default=None, metavar="KEY=VALUE",
                        help="override a config key for every architecture that has it; repeatable")
    parser.add_argument("--space",
                        help="JSON file: {model: {key: {kind: args}}} replacing tune/sweep/spaces.py entries")
    parser.add_argument("--workers", type=int, default=1, help="Ray Train workers per trial (default: 1)")
    parser.add_argument("--gpu", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--data-dir", help="folder with the MNIST IDX files (default: $MNIST_DATA_DIR)")
    parser.add_argument("--verbose", action="store_true", help="show Ray's own logs")
    parser.add_argument("--price", metavar="cpu_hour=USD,gpu_hour=USD",
                        help="US dollars per vCPU-hour and per GPU-hour for the report's costs, recorded in sweep.json "
                             "(default: tune/sweep/prices.py DEFAULT_PRICES, a dated public list price)")
    parser.add_argument("--objective", metavar="accuracy[,COST]",
                        help="what the search optimises: accuracy (default), or accuracy and gflops or params, "
                             "with Optuna's multi-objective sampling (tune/sweep/objectives.py)")
    parser.add_argument("--budget", metavar="COST=VALUE",
                        help="retrain each architecture's most accurate configuration within this cost, e.g. "
                             "gflops=0.05 (with --objective accuracy,COST)")
    parser.add_argument("--keep-trial-checkpoints", action="store_true",
                        help="keep every trial's latest checkpoint after its architecture's best trial is chosen "
                             "(default: removed then; recorded in sweep.json, so a resume keeps them too)")
    add_flags(parser)
    flags = vars(parser.parse_args(argv))
    tracking = Tracking.take(flags)
    return SweepRequest.from_flags(flags), tracking


def main(argv: list[str] | None = None) -> int:
    request, tracking = parse(argv)
    prices = price_flag(request.price)
    resuming = resumes(request)
    if resuming:
        sweep = resume_sweep(request)
        configs = {m: configs_for(m, sweep.preset, sweep.overrides) for m in sweep.models}
        check_plan_unchanged(sweep, configs)
    else:
        request, names, configs = validate(request)
        sweep = plan_sweep(request, names, read_space_file(request.space, configs))
        sweep.plan = effective_plan(sweep, configs)
        output = check_writable(request.output, "--output")
        if request.name and (output / check_name(request.name)).exists():  # claimed after Ray starts: checked before
            raise UsageError(f"--name {request.name}: {output / request.name} already holds a sweep; choose another "
                             f"name, or add --resume {output / request.name} to continue it")
    if sweep.storage:  # Tune's trials: a folder, or a URI (s3://...) opened and written to as Ray will
        check_storage(sweep.storage, "--storage")
    tracker = tracking.check()  # a tracker that does not answer is a bad flag: said before Ray starts
    if prices is not None:
        sweep.prices = prices
    sweep.keep_trial_checkpoints = sweep.keep_trial_checkpoints or request.keep_trial_checkpoints
    from jobs.engine.data.mnist import load_mnist

    data = load_mnist(request.data_dir)
    address = request.address or os.environ.get("RAY_ADDRESS")
    prefer_loopback(address)
    if address:
        from jobs.engine.run.cluster import check_reachable

        check_reachable(address)
    from jobs.engine.run.cluster import connect
    from jobs.engine.run.node_check import check_nodes

    # Ray first: a Ray that cannot start, or a node without our stack, leaves no empty sweep folder behind.
    check_nodes(request.gpu, in_process=connect(request.address, request.verbose))
    if not resuming:
        start_in_own_folder(sweep, output, request.name)
    from tune.report.write import report_finished_sweep
    from tune.sweep.orchestration import run_sweep
    from tune.track.observer import MlflowObserver

    observers = [MlflowObserver(tracker, sweep, tracking.register)] if tracker else []
    run_sweep(sweep, configs, data, request.workers, request.gpu, observers)  # ends with sweep.json complete
    report_finished_sweep(sweep)  # the sweep knows nothing of the page: the command writes it
    for observer in observers:  # and hands it to the tracker
        observer.report_written(sweep)
    return 0 if any(s.status == "ok" for s in sweep.status.values()) else 1


if __name__ == "__main__":
    run_cli(main)
