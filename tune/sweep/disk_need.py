"""How much disk a sweep needs at most, said before it trains, against what is free where it writes.

Per architecture, while its search runs, each of its trials keeps its latest checkpoint (tune/sweep/tuner.py
`CheckpointConfig(num_to_keep=1)`; a finished trial's stays until the search ends, when they all go, see
tune/sweep/trial_checkpoints.py): trials x a running checkpoint (weights x (1 + optimizer copies), jobs/engine/
checkpoint_size.py). Its retrain holds two running checkpoints at once while it replaces one by the next
(jobs/engine/train/sessions.py TaskSession), and each finished seed keeps its weights twice (checkpoint.pt without the
optimizer state, and model.onnx). Every architecture is searched at the same time, so the needs add up. Results,
logs and predictions are small beside these and left out.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from jobs.engine.measure.checkpoint_size import checkpoint_bytes, weights_bytes
from models.registry import Config
from tune.sweep.presets import SWEEPS

# The six architectures of the flagship run (`make sweep PRESET=full`), as BENCHMARKS.md quotes its need.
FULL_PRESET_MODELS = ("cnn", "resnet18", "vit", "faster_rcnn", "vgg16", "alexnet")


def model_need(model: str, config: Config, trials: int, seeds: int) -> int:
    """Bytes MODEL's search and retrains hold at most: TRIALS latest checkpoints, a retrain's two, SEEDS finished."""
    running = checkpoint_bytes(model, config)
    return trials * running + 2 * running + seeds * 2 * weights_bytes(model, config)


def sweep_need(configs: dict[str, Config], trials: int, seeds: int) -> int:
    """Bytes a sweep of CONFIGS (model -> base config) with TRIALS per architecture and SEEDS needs at most."""
    return sum(model_need(model, config, trials, seeds) for model, config in configs.items())


def full_preset_need() -> int:
    """What the full preset of six architectures needs at most by this estimate, in bytes (BENCHMARKS.md)."""
    from tune.sweep.checks import configs_for

    plan = SWEEPS["full"]
    configs = {model: configs_for(model, "full", []) for model in FULL_PRESET_MODELS}
    return sweep_need(configs, plan["samples"], plan["seeds"])


def free_where_it_writes(folders: list[Path]) -> list[tuple[Path, int]]:
    """Free bytes of each filesystem among FOLDERS (local folders), once per filesystem."""
    seen, free = set(), []
    for folder in folders:
        existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("/"))
        device = os.stat(existing).st_dev
        if device not in seen:
            seen.add(device)
            free.append((folder, shutil.disk_usage(existing).free))
    return free


def disk_lines(configs: dict[str, Config], trials: int, seeds: int, folders: list[Path]) -> list[str]:
    """One line with the sweep's need against the free space of FOLDERS (its folder, a local --storage), and a
    `warning:` line (the sweep still runs: the estimate is an upper bound) for each that has less free."""
    need = sweep_need(configs, trials, seeds)
    free = free_where_it_writes(folders)
    places = ", ".join(f"{gb(room)} free in {folder}" for folder, room in free)
    lines = [f"disk: this sweep needs at most {gb(need)} (each trial's latest checkpoint until its architecture's "
             f"search ends, then the retrains' weights); {places}"]
    lines += [f"warning: {folder} has {gb(room)} free, less than the {gb(need)} this sweep may need: it may stop "
              f"with a full disk (then free space and --resume)" for folder, room in free if room < need]
    return lines


def gb(size: int) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e8 else f"{size / 1e6:.0f} MB"
