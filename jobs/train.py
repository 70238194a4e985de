"""`python -m jobs.train`: train one architecture through Ray Train and write its result.json."""

from __future__ import annotations

import argparse
import time

import models
from jobs.engine import config as run_config
from jobs.engine.errors import ArgumentParser, UsageError, run_cli
from jobs.engine.run.loopback import prefer_loopback
from jobs.engine.run.storage import check_folder_name, check_writable
from tune.track.flags import Tracking, add_flags


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(prog="python -m jobs.train", description=__doc__)
    parser.add_argument("--model", required=True, help=f"one of: {', '.join(models.model_names())}")
    parser.add_argument("--help-config", action="store_true",
                        help="print every config key of --model (type, default, bounds, meaning) and exit")
    parser.add_argument("--preset", default="quick", help="smoke | quick | full (default: quick)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key of the model or the loop; repeatable")
    parser.add_argument("--workers", type=int, default=1, help="data-parallel workers (default: 1)")
    parser.add_argument("--gpu", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--data-dir", help="folder with the MNIST IDX files (default: $MNIST_DATA_DIR)")
    parser.add_argument("--output", default="results", help="results folder (default: results)")
    parser.add_argument("--name", help="run name (default: MODEL-PRESET-TIMESTAMP)")
    parser.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--max-failures", type=int, default=1, help="worker-group restarts from checkpoint")
    parser.add_argument("--verbose", action="store_true", help="show Ray's own logs")
    add_flags(parser, register=False)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.model not in models.model_names():
        raise UsageError(f"unknown model {args.model!r}; choose from {', '.join(models.model_names())}")
    if args.help_config:
        print(f"{args.model}: {models.spec(args.model).summary}\n\n{run_config.config_table(args.model)}\n\n"
              "Set any key with --set key=value; presets (--preset) change the defaults (jobs/engine/presets.py).")
        return 0
    config = run_config.resolve(args.model, args.preset, args.overrides)
    run_config.check_shares(config, args.workers)  # a rank with one image cannot train a BatchNorm
    # Everything a user can get wrong is checked before Ray starts.
    output = check_writable(args.output, "--output")  # Ray Train's storage and the run's result.json: a folder
    if args.name:
        check_folder_name(args.name)
    from jobs.engine.data.mnist import load_mnist
    from jobs.engine.run.preflight import check_model_assets

    data = load_mnist(args.data_dir)
    check_model_assets(args.model, config)
    tracker = Tracking.take(vars(args)).check("the run")  # one that does not answer: said before Ray starts

    prefer_loopback(args.address)
    import ray

    from jobs.engine.run.cluster import connect, plan_workers
    from jobs.engine.run.launch import train_with_ray_train
    from jobs.engine.run.node_check import check_nodes

    embedded = connect(args.address, args.verbose)
    workers = plan_workers(args.workers, args.gpu)
    check_nodes(args.gpu, in_process=embedded)  # the packages and GPUs of the nodes, before Ray Train starts
    name = args.name or f"{args.model}-{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    print(f"training {args.model} ({args.preset} preset) on {workers.count} worker(s), "
          f"{'GPU' if workers.use_gpu else 'CPU'}; {data.sizes()['train']} train / {data.sizes()['val']} val "
          f"images before the preset's limits", flush=True)
    train_with_ray_train(args.model, config, ray.put(data), workers, output, name,
          max_failures=args.max_failures)
    if tracker is not None:
        from tune.track.single_run import log_run

        log_run(tracker, output / name)  # a tracker that fails costs the run nothing: said once
    return 0


if __name__ == "__main__":
    run_cli(main)
