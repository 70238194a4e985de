"""The rank-0 summary of a finished run: what the driver builds result.json from (jobs/engine/run_result.py
`build_result`), written as SUMMARY_FILE beside the finished run's checkpoint."""

from __future__ import annotations

import resource
from typing import Any

import torch
from torch import nn

import models
from jobs.engine.run_result import Evaluation, Metrics, Summary
from jobs.engine.train.cpus import usable_cpus
from jobs.engine.train.state import LoopState

SUMMARY_FILE = "summary.json"


def summarise(state: LoopState, cfg: dict[str, Any], model: nn.Module, device: torch.device,
              validation: Evaluation) -> Summary:
    return {"history": state.history, "train_time_s": state.train_time_s, "compile_time_s": state.compile_time_s,
            "step_fallback": state.step_fallback, "config": cfg, "started_at": state.started_at,
            "first_step_at": state.first_step_at,
            "images_per_s": state.train_images / max(state.train_time_s, 1e-9),
            "params": models.count_parameters(model), "peak_memory_mb": peak_memory_mb(device),
            "device": device_name(device), "validation": validation, "best_epoch": best_epoch(state.history)}


def best_epoch(history: list[Metrics]) -> int | None:
    """The 1-based epoch of the highest validation accuracy (the first of equals); None without history."""
    if not history:
        return None
    return int(max(history, key=lambda h: (h["val_accuracy"], -h["epoch"]))["epoch"])


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def device_name(device: torch.device) -> str:
    """The GPU's name, or "cpu (2 cores, 1 thread)": the cores this process may use (its affinity mask, cgroup
    quota or SLURM allocation, jobs/engine/train/cpus.py; not the host's count) and the threads torch computes with."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cores, threads = usable_cpus(), torch.get_num_threads()
    return f"cpu ({cores} core{'s' if cores != 1 else ''}, {threads} thread{'s' if threads != 1 else ''})"
