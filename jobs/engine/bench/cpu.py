"""What `make bench` measures: our loop against the common DataLoader recipe, same model and batch.

Ours: uint8 MNIST on the device once, batched normalisation/augmentation, the loop's own `run_epoch`.
Reference: torchvision `MNIST` + `ToTensor`/`Normalize` (+ `RandomAffine` when augmenting) + `DataLoader`.
Both train the same CNN with the same optimizer and batch size in this process, one after the other, and the
ratio, the machine and the command are written to BENCHMARKS.md. When a GPU is visible a second section is
written beside this one (jobs/engine/bench/gpu.py): the captured step against two GPU recipes, and the time to 99%.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import models
from jobs.engine.data.augment import memory_format
from jobs.engine.data.mnist import FILES, IMAGE_MAGIC, LABEL_MAGIC, limit, read_folder
from jobs.engine.precision import autocast
from jobs.engine.tasks.classification import ClassificationTask
from jobs.engine.train.epoch import place, run_epoch
from jobs.engine.train.optim import make_optimizer, make_schedule, param_groups

BEGIN, END = "<!-- bench:loop:begin -->", "<!-- bench:loop:end -->"
CPU = torch.device("cpu")


def sync(device: torch.device) -> None:
    """Wait for the device, so that a time taken next covers its queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def torchvision_root(folder: Path, into: Path) -> Path:
    """torchvision's MNIST wants MNIST/raw/<uncompressed IDX files>: written from whatever form FOLDER holds
    (jobs/engine/data/formats.py), so the recipe reads exactly the images our loop reads."""
    raw = into / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    train, test = read_folder(folder)
    arrays = {"train_images": train.images, "train_labels": train.labels, "test_images": test.images,
              "test_labels": test.labels}
    for role, stem in FILES.items():
        values = np.ascontiguousarray(arrays[role], dtype=np.uint8)
        magic = IMAGE_MAGIC if values.ndim == 3 else LABEL_MAGIC
        header = struct.pack(f">I{values.ndim}I", magic, *values.shape)
        (raw / stem).write_bytes(header + values.tobytes())
    return into


def reference_epoch(root: Path, model: torch.nn.Module, cfg: dict[str, Any], n: int, augment: bool,
                    workers: int, channels_last: bool = False, device: torch.device = CPU,
                    bf16: bool = False, fused: bool = False) -> Callable[[], float]:
    """The common recipe; each call trains one epoch and returns its images/s.

    On a GPU: pinned memory and non-blocking copies; `bf16` adds autocast, `fused` the fused optimizer."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    steps = [transforms.RandomAffine(cfg["rotate_deg"], translate=(cfg["shift_px"] / 28,) * 2)] if augment else []
    transform = transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    dataset = Subset(datasets.MNIST(str(root), train=True, transform=transform), range(n))
    loader = DataLoader(dataset, batch_size=cfg["batch_size"], shuffle=True, num_workers=workers,
                        persistent_workers=workers > 0, pin_memory=device.type == "cuda")
    layout = memory_format(channels_last)
    model = model.to(device, memory_format=layout)
    optimizer = make_optimizer(param_groups(model, cfg), cfg, device if fused else None)
    precision = (lambda: autocast(device)) if bf16 else contextlib.nullcontext
    model.train()

    def epoch() -> float:
        started, seen = time.perf_counter(), 0
        for images, labels in loader:
            images = images.to(device, non_blocking=True).contiguous(memory_format=layout)
            with precision():
                logits = model(images)
            loss = F.cross_entropy(logits.float(), labels.to(device, non_blocking=True))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(labels)
        sync(device)
        return seen / (time.perf_counter() - started)

    return epoch


def our_epoch(data: Any, model: torch.nn.Module, cfg: dict[str, Any], n: int, augment: bool) -> Callable[[], float]:
    """Our loop's own `run_epoch` on on-device uint8 data; each call trains one epoch and returns its images/s."""
    cfg = {**cfg, "augment": augment}
    task = ClassificationTask(limit(data, train=n), cfg, torch.device("cpu"))
    model = place(model, torch.device("cpu"), cfg)
    optimizer = make_optimizer(param_groups(model, cfg), cfg)
    schedule = make_schedule(optimizer, {**cfg, "schedule": "constant"}, 1)
    model.train()

    def epoch() -> float:
        indices = torch.randperm(task.train_size)
        started = time.perf_counter()
        run_epoch(model, task, optimizer, schedule, indices, cfg["batch_size"])
        return task.train_size / (time.perf_counter() - started)

    return epoch


def interleaved_medians(epochs: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """One epoch of each side per round, so that drift in the machine's speed hits every side alike.

    A first round warms up loader workers and the allocator and is not counted."""
    speeds: dict[str, list[float]] = {name: [] for name in epochs}
    for round_ in range(rounds + 1):
        for name, epoch in epochs.items():
            speed = epoch()
            if round_:
                speeds[name].append(speed)
    return {name: statistics.median(values) for name, values in speeds.items()}


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} (CPU)"


def write_section(path: Path, text: str, begin: str = BEGIN, end: str = END) -> None:
    old = path.read_text() if path.is_file() else "# Benchmarks\n"
    if begin in old and end in old:
        new = old.split(begin)[0] + text + old.split(end, 1)[1]
    else:
        new = old.rstrip() + "\n\n" + text + "\n"
    path.write_text(new)


def cpu_section(data: Any, root: Path, cfg: dict[str, Any], args: argparse.Namespace, command: str) -> str:
    rows, bf16 = [], cfg["precision"] == "bf16"  # both sides compute alike: the ratio is the data path and the loop
    for augment in (False, True):
        torch.manual_seed(0)
        speeds = interleaved_medians({
            "ours": our_epoch(data, models.build("cnn", cfg), cfg, args.images, augment),
            "reference": reference_epoch(root, models.build("cnn", cfg), cfg, args.images, augment,
                                         args.loader_workers, bf16=bf16),
            # The same recipe in our NHWC layout: splits the speed-up into layout and data path.
            "reference_nhwc": reference_epoch(root, models.build("cnn", cfg), cfg, args.images, augment,
                                              args.loader_workers, channels_last=cfg["channels_last"], bf16=bf16),
        }, args.rounds)
        ours, ref, ref_nhwc = speeds["ours"], speeds["reference"], speeds["reference_nhwc"]
        rows.append((augment, ours, ref, ref_nhwc))
        print(f"augment={augment}: ours {ours:.0f} img/s, reference {ref:.0f} img/s ({ours / ref:.2f}x), "
              f"reference in channels_last {ref_nhwc:.0f} img/s ({ours / ref_nhwc:.2f}x)", flush=True)
    augmentation = f"shifts ±{cfg['shift_px']:g}px, rotations ±{cfg['rotate_deg']:g}°"
    table = "\n".join(f"| {augmentation if a else 'none'} | {o:,.0f} | {r:,.0f} | **{o / r:.2f}×** | {c:,.0f} | "
                      f"{o / c:.2f}× |" for a, o, r, c in rows)
    return (f"{BEGIN}\n## Training loop vs the common DataLoader recipe (CPU)\n\n"
            f"Measured {time.strftime('%Y-%m-%d')} on {machine()}; command: `{command}`.\n"
            f"Model: the default `cnn` ({models.count_parameters(models.build('cnn', cfg)):,} parameters), "
            f"batch {args.batch_size}, AdamW, {'bf16 autocast' if bf16 else 'fp32'} on both sides (`precision` auto on "
            f"this CPU); each figure is the median of {args.rounds} timed epochs of "
            f"{args.images:,} images after a warm-up epoch, the sides taking turns epoch by epoch; "
            f"reference DataLoader with {args.loader_workers} worker processes.\n\n"
            "| augmentation | ours (img/s) | reference (img/s) | speed-up | reference, channels_last (img/s) | "
            "speed-up from the data path alone |\n|---|---:|---:|---:|---:|---:|\n"
            f"{table}\n\nThe speed-up column is the issue's measure: our loop against the recipe as people write it. "
            "Our loop trains in channels_last (NHWC) by default; the last two columns give the recipe that layout "
            "too, so what remains is the gain of the on-device uint8 data path over DataLoader workers.\n\n"
            "Target: ≥ 1.5× on this 2-core CPU. The GPU figures are in their own section, written by the same "
            f"command when a GPU is visible.\n{END}")
