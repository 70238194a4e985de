"""The one loop without Ray: an in-process session double, as timm tests its models (build, a few steps, a report).

`LocalSession` gives the loop (jobs/engine/train/loop.py `run_loop`) what a Ray session does: rank 0 of 1 on the CPU,
the last checkpoint it reported, and every report kept in order. `train_locally` runs a model through the loop
that way and writes result.json the way a retrain's driver does (jobs/engine/run/launch.py `write_result`), so the
model tests read the same record a Ray run writes, without a Ray process in the test session.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from jobs.engine.errors import Diverged


class LocalCheckpoint:
    """A checkpoint folder on this machine, read the way the loop reads ray.train.Checkpoint."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextmanager
    def as_directory(self) -> Iterator[str]:
        yield str(self.folder)


class LocalSession:
    """Rank 0 of a world of 1 on the CPU. Each reported checkpoint replaces the last in FOLDER/checkpoint, as a
    retrain's TaskSession does; `reports` holds every metrics dict the loop reported, in order."""

    rank, world = 0, 1

    def __init__(self, folder: Path) -> None:
        self.device = torch.device("cpu")
        self.checkpoint = folder / "checkpoint"
        self.reports: list[dict[str, Any]] = []

    def get_checkpoint(self) -> LocalCheckpoint | None:
        return LocalCheckpoint(self.checkpoint) if self.checkpoint.is_dir() else None

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model

    def cpus(self) -> int:
        return torch.get_num_threads()

    def report(self, metrics: dict[str, Any], folder: str | None = None) -> None:
        self.reports.append(dict(metrics))
        if folder is not None:
            shutil.rmtree(self.checkpoint, ignore_errors=True)
            shutil.copytree(folder, self.checkpoint)

    def diverged(self, message: str) -> None:
        raise Diverged(message)


def local_config(model: str, overrides: list[str] | None = None, final_checks: bool = False,
                 preset: str = "smoke") -> dict[str, Any]:
    """The run config of MODEL at PRESET with OVERRIDES; the final run's ONNX export and robustness check are
    skipped unless FINAL_CHECKS (they cost more than a smoke run's training for the big models)."""
    from jobs.engine import config as run_config

    skipped = [] if final_checks else ["export_onnx=false", "robustness_images=0"]
    return run_config.resolve(model, preset, [*skipped, *(overrides or [])])


def train_locally(model: str, data: Any, folder: Path, overrides: list[str] | None = None,
                  final_checks: bool = False, session: LocalSession | None = None) -> dict[str, Any]:
    """Train MODEL on DATA (jobs.engine.data.mnist.Mnist) through the one loop in this process and write
    FOLDER/result.json as a single-worker retrain does; returns result.json's content."""
    from jobs.engine.run.cluster import Workers
    from jobs.engine.run.launch import keep_beside_result, write_result
    from jobs.engine.train.loop import run_loop
    from jobs.engine.train.prepare import LoopRequest
    from jobs.engine.train.summary import SUMMARY_FILE

    config = local_config(model, overrides, final_checks)
    session = session or LocalSession(folder)
    started, started_at = time.perf_counter(), datetime.now(UTC).isoformat()
    run_loop(LoopRequest(model, config, data), session)
    summary = json.loads((session.checkpoint / SUMMARY_FILE).read_text())
    keep_beside_result(session.checkpoint, folder)
    return write_result(model, config, summary, Workers(1, False, 1.0), started, started_at, folder,
                        show=False).to_json()
