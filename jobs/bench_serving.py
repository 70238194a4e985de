"""`make bench-serving`: how stable the serving measurement is: each model measured twice in one process.

The final retrain measures latency at batch 1 and throughput at a large batch once (jobs/engine/measure/serving.py);
this runs that same measurement twice back to back on the same model, input and threads and writes both medians
and their ratio to BENCHMARKS.md, so a reader knows how far one figure can be trusted (target: within 20%).
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch

import models
from jobs.engine import config as run_config
from jobs.engine.bench.cpu import write_section
from jobs.engine.data.augment import prepare_batch
from jobs.engine.data.mnist import load_mnist, resolve_data_dir
from jobs.engine.errors import ArgumentParser, UsageError, run_cli
from jobs.engine.measure.serving import serving_cost
from jobs.engine.precision import resolve_precision
from jobs.engine.train.epoch import place

BEGIN, END = "<!-- bench:serving:begin -->", "<!-- bench:serving:end -->"
CPU = torch.device("cpu")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(prog="python -m jobs.bench_serving", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="cnn,vit,resnet18")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a sweep retrain holds 1 CPU)")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="BENCHMARKS.md")
    args = parser.parse_args(argv)
    unknown = [m for m in args.models.split(",") if m not in models.model_names()]
    if unknown:
        raise UsageError(f"--models: unknown {', '.join(unknown)}")
    if args.threads < 1:
        raise UsageError("--threads must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = resolve_data_dir(args.data_dir)
    if folder is None:
        raise UsageError("make bench-serving needs local MNIST files: pass --data-dir or set MNIST_DATA_DIR")
    torch.set_num_threads(args.threads)
    test = load_mnist(str(folder)).test_images
    rows = []
    for name in args.models.split(","):
        cfg = run_config.resolve(name, args.preset, [])
        precision = resolve_precision(cfg["precision"], CPU, name)
        model = place(models.build(name, cfg), CPU, cfg).eval()
        images = prepare_batch(test[: cfg["serving_batch"]], False, channels_last=cfg["channels_last"])
        runs = [serving_cost(model, precision, images, batch=cfg["serving_batch"], latency_calls=cfg["serving_calls"],
                             throughput_calls=3, throughput_warmup=1) for _ in range(2)]
        p50 = [r["latency_ms_p50"] for r in runs]
        rows.append(f"| {name} | {precision} | {p50[0]:.3f} | {p50[1]:.3f} | {max(p50) / min(p50):.2f} | "
                    f"{runs[0]['throughput_per_s']:,.0f} | {runs[1]['throughput_per_s']:,.0f} |")
        print(rows[-1], flush=True)
    command = "make bench-serving  # " + " ".join(["python -m jobs.bench_serving", *(argv or sys.argv[1:])])
    text = "\n".join([
        BEGIN, "### Serving measurement, twice in one process (`make bench-serving`)", "",
        f"`{command}` on {platform.processor() or platform.machine()}, {args.threads} thread(s), {args.preset} "
        "preset configs (untrained weights: the time does not depend on their values), the first "
        f"{cfg['serving_batch']} test images. Latency: median of {cfg['serving_calls']} calls at batch 1 after a "
        "warm-up; throughput: 3 batches after 1.", "",
        "| model | precision | p50 ms, 1st | p50 ms, 2nd | ratio | img/s at batch, 1st | 2nd |",
        "|---|---|---:|---:|---:|---:|---:|", *rows, END])
    write_section(Path(args.out), text, BEGIN, END)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    run_cli(main)
