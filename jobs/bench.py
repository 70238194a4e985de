"""`make bench`: training throughput of our loop against the common DataLoader recipe (jobs/engine/bench/cpu.py).

Writes its section of BENCHMARKS.md; on a machine with a GPU a second section (jobs/engine/bench/gpu.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from jobs.engine import config as run_config
from jobs.engine.bench.cpu import CPU, cpu_section, torchvision_root, write_section
from jobs.engine.data.mnist import limit, load_mnist, resolve_data_dir
from jobs.engine.errors import ArgumentParser, UsageError, run_cli
from jobs.engine.precision import resolve_precision


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(prog="python -m jobs.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12_000, help="training images per timed epoch")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--loader-workers", type=int, default=2, help="DataLoader workers of the CPU reference")
    parser.add_argument("--rounds", type=int, default=5, help="timed epochs per side; the median is reported")
    parser.add_argument("--sections", choices=("auto", "cpu", "gpu", "both"), default="auto",
                        help="auto: the CPU section, and the GPU one when a GPU is visible")
    parser.add_argument("--gpu-device", default="cuda", help="device of the GPU section (cpu: a quick dry run)")
    parser.add_argument("--gpu-loader-workers-max", dest="loader_workers_max", type=int, default=12,
                        help="cap on the GPU recipes' DataLoader workers (4 and 12)")
    parser.add_argument("--race-epochs", type=int, default=3, help="time to 99%%: most epochs, one-cycle length")
    parser.add_argument("--race-images", type=int, default=0, help="time to 99%%: training images (0 = all)")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="BENCHMARKS.md")
    args = parser.parse_args(argv)
    for name in ("images", "batch_size", "rounds", "race_epochs"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    gpu = args.sections in ("gpu", "both") or (args.sections == "auto" and torch.cuda.is_available())
    device = torch.device(args.gpu_device)
    if gpu and device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--sections gpu: no CUDA device is visible (torch.cuda.is_available() is False)")
    folder = resolve_data_dir(args.data_dir)
    if folder is None:
        raise UsageError("make bench needs local MNIST files: pass --data-dir or set MNIST_DATA_DIR")
    data = load_mnist(str(folder))
    # The preset's GPU batch is not used: both sections compare the loops at the same batch as the recipes.
    cfg = run_config.for_device(run_config.resolve("cnn", "full", [f"batch_size={args.batch_size}"]), "cpu")
    cpu_cfg = {**cfg, "precision": resolve_precision(cfg["precision"], CPU, "cnn")}
    command = "make bench  # " + " ".join(["python -m jobs.bench", *(argv if argv is not None else sys.argv[1:])])
    with tempfile.TemporaryDirectory() as tmp:
        root = torchvision_root(folder, Path(tmp))
        if args.sections in ("auto", "cpu", "both"):
            write_section(Path(args.out), cpu_section(data, root, cpu_cfg, args, command))
        if gpu:
            from jobs.engine.bench.gpu import GPU_BEGIN, GPU_END, gpu_section

            text = gpu_section(data, limit(data, train=args.race_images), root, cfg, args, device, command)
            write_section(Path(args.out), text, GPU_BEGIN, GPU_END)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    run_cli(main)
